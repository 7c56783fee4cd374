package io.expertmesh.telemetry;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall.SimpleForwardingClientCall;
import io.grpc.ForwardingClientCallListener.SimpleForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapPropagator;
import io.opentelemetry.context.propagation.TextMapSetter;

/**
 * Carries the caller's trace into a call's metadata ({@code traceparent}, {@code tracestate}, {@code baggage}
 * with the default W3C propagators). When the context current on the thread that starts the call holds a
 * sampled span, the call gets a CLIENT span under it (ending when the call closes, with its status) and that
 * span is what the server sees as its parent; otherwise the context goes out as it is and nothing is recorded,
 * so untraced calls cost one check. grpc-opentelemetry's own tracing would do this too, but in grpc-java 1.85
 * it is experimental and not public API.
 */
final class TracingClientInterceptor implements ClientInterceptor {
    private static final TextMapSetter<Metadata> SETTER = (headers, key, value) -> {
        if (headers != null) {
            headers.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), value);
        }
    };

    private final Tracer tracer;
    private final TextMapPropagator propagator;
    private final ClientSpanCustomizer customizer;

    TracingClientInterceptor(Tracer tracer, TextMapPropagator propagator, ClientSpanCustomizer customizer) {
        this.tracer = tracer;
        this.propagator = propagator;
        this.customizer = customizer;
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        Context context = Context.current();
        ClientCall<Q, R> call = next.newCall(method, options);
        if (!Span.fromContext(context).getSpanContext().isSampled()) {
            return new SimpleForwardingClientCall<>(call) {
                @Override
                public void start(Listener<R> listener, Metadata headers) {
                    propagator.inject(context, headers, SETTER);
                    super.start(listener, headers);
                }
            };
        }
        Span span = tracer.spanBuilder(method.getFullMethodName()).setParent(context).setSpanKind(SpanKind.CLIENT)
                .setAttribute("rpc.system", "grpc").setAttribute("rpc.service", method.getServiceName())
                .setAttribute("rpc.method", method.getBareMethodName())
                .setAttribute("server.address", next.authority()).startSpan();
        Context withSpan = context.with(span);
        return new SimpleForwardingClientCall<>(call) {
            @Override
            public void start(Listener<R> listener, Metadata headers) {
                propagator.inject(withSpan, headers, SETTER);
                super.start(new SimpleForwardingClientCallListener<>(listener) {
                    @Override
                    public void onClose(Status status, Metadata trailers) {
                        span.setAttribute("rpc.grpc.status_code", status.getCode().value());
                        if (!status.isOk()) {
                            span.setStatus(StatusCode.ERROR, status.getCode() + (status.getDescription() == null
                                    ? "" : ": " + status.getDescription()));
                        }
                        span.end();
                        super.onClose(status, trailers);
                    }
                }, headers);
            }

            @Override
            public void sendMessage(Q message) {
                customizer.onRequest(span, message);
                super.sendMessage(message);
            }
        };
    }
}
