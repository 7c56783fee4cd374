package io.expertmesh.client;

import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import java.util.List;

/**
 * Receives a streamed generation. Called on a gRPC executor thread, one callback at a time and in order:
 * {@link #onTokens} zero or more times, then exactly one of {@link #onFinished} or {@link #onError}. Callbacks
 * should return quickly; a callback that throws cancels the call and is reported through {@link #onError}.
 */
public interface GenerateListener {
    /** Tokens produced since the previous callback (one or more; several when the client reads slowly). */
    void onTokens(List<GeneratedToken> tokens);

    /** The generation ended normally; {@code finished} says why and carries counts and timings. */
    void onFinished(Finished finished);

    /** The call failed (a rejection, a deadline, a broken connection, a cancellation by the caller). */
    void onError(ExpertMeshException error);
}
