package io.expertmesh.router.service;

import io.grpc.InternalMetadata;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/**
 * Refuses a call whose request metadata is larger than a limit with RESOURCE_EXHAUSTED, before any service or
 * other interceptor sees it. This is the limit callers meet; the transport's own (HTTP/2 header list) limit is set
 * well above it, because the transport can only reset the stream with an HTTP 431 that clients read as UNKNOWN,
 * and past a quarter over its limit it drops the whole connection, every call on it included. So a caller over
 * this limit gets a clear status and the other calls on its connection go on.
 */
public final class MetadataSizeLimit implements ServerInterceptor {
    /** HTTP/2 counts each header as name + value + 32 bytes (RFC 7540, SETTINGS_MAX_HEADER_LIST_SIZE). */
    private static final int ENTRY_OVERHEAD = 32;

    private final int maxBytes;

    /** @param maxBytes largest request metadata accepted, counted as HTTP/2 counts a header list */
    public MetadataSizeLimit(int maxBytes) {
        if (maxBytes < 1) {
            throw new IllegalArgumentException("metadata limit must be >= 1 byte, got " + maxBytes);
        }
        this.maxBytes = maxBytes;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        long size = sizeOf(headers);
        if (size > maxBytes) {
            call.close(Status.RESOURCE_EXHAUSTED.withDescription("request metadata is " + size + " bytes; at most "
                    + maxBytes + " are accepted"), new Metadata());
            return new ServerCall.Listener<>() {
            };
        }
        return next.startCall(call, headers);
    }

    /** The size of {@code headers} as HTTP/2 counts a header list. */
    static long sizeOf(Metadata headers) {
        byte[][] serialized = InternalMetadata.serialize(headers);
        long size = 0;
        for (int i = 0; i + 1 < serialized.length; i += 2) {
            size += serialized[i].length + serialized[i + 1].length + ENTRY_OVERHEAD;
        }
        return size;
    }
}
