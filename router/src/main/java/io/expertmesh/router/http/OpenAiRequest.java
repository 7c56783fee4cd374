package io.expertmesh.router.http;

import io.expertmesh.proto.inference.v1.GenerateRequest;

/**
 * An OpenAI request as the router takes it: the {@link GenerateRequest} the gRPC path validates and runs, plus
 * what decides the shape of the answer.
 *
 * @param endpoint       completions or chat completions
 * @param generate       the generation itself, validated later by the gRPC path's mapper
 * @param stream         answer as server-sent events
 * @param includeUsage   streaming: a last chunk with the usage ({@code stream_options.include_usage})
 * @param logprobs       report each token's log-probability
 * @param topLogprobs    and this many alternatives per token
 * @param tokensAsIds    logprob tokens as {@code token_id:N} (vLLM's {@code return_tokens_as_token_ids})
 * @param maxTokensField the field the client limited the length with, for error messages
 */
record OpenAiRequest(Endpoint endpoint, GenerateRequest generate, boolean stream, boolean includeUsage,
                     boolean logprobs, int topLogprobs, boolean tokensAsIds, String maxTokensField) {

    /** The two generation endpoints. */
    enum Endpoint {
        COMPLETIONS("/v1/completions", "cmpl-"),
        CHAT("/v1/chat/completions", "chatcmpl-");

        final String path;
        final String idPrefix;

        Endpoint(String path, String idPrefix) {
            this.path = path;
            this.idPrefix = idPrefix;
        }
    }
}
