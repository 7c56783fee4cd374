package io.expertmesh.router.engine;

import io.expertmesh.core.generate.TokenEvent;

/**
 * Receives one request's output. Called on the engine's step thread, so implementations must not block: buffer
 * and hand off (the gRPC layer applies flow control on its own side).
 */
public interface SequenceListener {

    /** The request's first step was scheduled (the end of its wait in the queue). Default: nothing. */
    default void onScheduled() {
    }

    /** A generated token (text may be empty when held back). */
    void onToken(TokenEvent token);

    /** The end of the request; called exactly once, after the last {@link #onToken}. */
    void onFinished(Completion completion);
}
