package io.expertmesh.worker;

import io.grpc.Status;

/**
 * Sees every {@code RunExperts} call as it ends, on the gRPC thread that served it and while the call's trace
 * span is current. Must not block. {@link WorkerTelemetry} implements it; the service knows nothing of
 * OpenTelemetry.
 */
public interface RunExpertsObserver {
    RunExpertsObserver NONE = (layer, tokens, ids, entries, nanos, code) -> { };

    /**
     * @param layer   the request's layer (as sent, even when invalid)
     * @param tokens  tokens in the request (as sent)
     * @param ids     expert id of each entry, {@code entries} of them; null when the call failed
     * @param entries (token, expert) entries served; 0 when the call failed
     * @param nanos   time spent in the service: validation, compute, encoding
     * @param code    OK, or the status the call ended with
     */
    void onRunExperts(int layer, int tokens, int[] ids, int entries, long nanos, Status.Code code);

    /**
     * A successful call's split, just before {@link #onRunExperts}: {@code queueNanos} waiting for the compute
     * (another call held it), {@code computeNanos} in the experts.
     */
    default void onTimes(int layer, long queueNanos, long computeNanos) {
    }
}
