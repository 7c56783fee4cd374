package io.expertmesh.telemetry;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapPropagator;
import io.opentelemetry.context.propagation.TextMapSetter;

/**
 * Writes the caller's trace context into a call's metadata ({@code traceparent}, {@code tracestate} and
 * {@code baggage} with the default W3C propagators). The context is the one current on the thread that starts
 * the call, so a router's per-layer dispatch span is the parent of the worker's span. grpc-opentelemetry's own
 * tracing would do this too, but in grpc-java 1.85 it is experimental and not public API.
 */
final class TraceContextClientInterceptor implements ClientInterceptor {
    private static final TextMapSetter<Metadata> SETTER = (headers, key, value) -> {
        if (headers != null) {
            headers.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), value);
        }
    };

    private final TextMapPropagator propagator;

    TraceContextClientInterceptor(TextMapPropagator propagator) {
        this.propagator = propagator;
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        Context context = Context.current();
        return new SimpleForwardingClientCall<>(next.newCall(method, options)) {
            @Override
            public void start(Listener<R> listener, Metadata headers) {
                propagator.inject(context, headers, SETTER);
                super.start(listener, headers);
            }
        };
    }
}
