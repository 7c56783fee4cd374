package io.expertmesh.router.service;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.router.engine.EngineRequest;

/**
 * The gRPC path's request validation for other front ends (the OpenAI-compatible HTTP API): a front end builds a
 * {@link GenerateRequest} and gets the same checks, limits, defaults and tokenization as a Generate call, so the
 * two APIs cannot drift apart.
 */
public final class GenerateRequests {
    private GenerateRequests() {
    }

    /**
     * Validates {@code request} against {@code model} and makes the engine's request. A bad request throws the
     * same INVALID_ARGUMENT {@link io.grpc.StatusRuntimeException} Generate answers with: its message lists
     * every problem and its details carry a {@code google.rpc.BadRequest} naming each field.
     */
    public static EngineRequest map(LoadedModel model, GenerateRequest request) {
        // The mapper holds only the config and tokenizer, so one per request costs nothing worth caching.
        return new GenerateRequestMapper(model.config(), model.tokenizer().orElse(null)).map(request);
    }
}
