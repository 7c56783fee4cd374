package io.expertmesh.router.engine;

/** A request the engine will not take; the reason decides the gRPC status the service answers with. */
public final class EngineRejection extends RuntimeException {

    /** Why a request was refused. */
    public enum Reason {
        /** The waiting queue is at its bound (RESOURCE_EXHAUSTED). */
        QUEUE_FULL,
        /** The engine is draining or stopped (UNAVAILABLE). */
        DRAINING,
        /** The request can never fit the KV cache (INVALID_ARGUMENT). */
        TOO_LARGE
    }

    private final Reason reason;

    public EngineRejection(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
