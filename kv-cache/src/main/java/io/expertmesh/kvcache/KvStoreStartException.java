package io.expertmesh.kvcache;

/**
 * The KV store's Hazelcast member or client could not start, for a reason the operator fixes with flags (every
 * port of the member's range taken, an address not of this host). Its message is one line meant for them; a
 * caller reports it without a stack trace.
 */
public final class KvStoreStartException extends IllegalStateException {
    public KvStoreStartException(String message, Throwable cause) {
        super(message, cause);
    }
}
