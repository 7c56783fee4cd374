package io.expertmesh.router.experts;

import io.grpc.Status;

/**
 * Sees every expert dispatch, after the router recorded it in its own metrics. Called on the thread that ran the
 * step or the RPC's callback.
 */
public interface DispatchObserver {
    DispatchObserver NONE = new DispatchObserver() {
    };

    /** One RunExperts call to {@code worker} for {@code tokens} tokens of {@code layer} ended with {@code status}. */
    default void onRpc(int layer, String worker, int tokens, long nanos, Status status) {
    }

    /**
     * A successful RunExperts call's split: the worker's queueing and compute as it reported them, and the
     * overhead (the call's time at the router minus both: serialization, transport, wake-ups).
     */
    default void onRpcTimes(int layer, String worker, long queueNanos, long computeNanos, long overheadNanos) {
    }

    /** One layer's whole dispatch (every worker, retries included) took {@code nanos}. */
    default void onLayer(int layer, int tokens, long nanos) {
    }
}
