package io.expertmesh.telemetry;

import io.opentelemetry.api.trace.Span;

/**
 * Names and annotates a traced outgoing call's CLIENT span from its request message (the span exists only
 * when the caller's context is sampled), e.g. the router turns {@code RunExperts} into
 * {@code dispatch layer 7} with the layer and token count. Runs on the thread that sends the message.
 */
@FunctionalInterface
public interface ClientSpanCustomizer {
    ClientSpanCustomizer NONE = (span, request) -> { };

    void onRequest(Span span, Object request);
}
