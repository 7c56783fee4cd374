package io.expertmesh.telemetry;

import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapPropagator;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A SERVER span per call, a child of the trace context the caller sent in the metadata (a new trace without
 * one). The span is current while the service's handlers run, so services can add attributes to
 * {@code Span.current()} and start child spans; it ends when the call closes (for a server stream: when the
 * stream ends, not when the handler returns) or is cancelled. Health checks and reflection
 * ({@code grpc.*} services) get no span: they would drown the request traces.
 */
final class TracingServerInterceptor implements ServerInterceptor {
    private static final TextMapGetter<Metadata> GETTER = new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(Metadata headers) {
            return headers.keys();
        }

        @Override
        public String get(Metadata headers, String key) {
            if (headers == null || key.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
                return null;
            }
            return headers.get(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
        }
    };

    private final Tracer tracer;
    private final TextMapPropagator propagator;

    TracingServerInterceptor(Tracer tracer, TextMapPropagator propagator) {
        this.tracer = tracer;
        this.propagator = propagator;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        String service = call.getMethodDescriptor().getServiceName();
        if (service == null || service.startsWith("grpc.")) {
            return next.startCall(call, headers);
        }
        // The root context, not the thread's: an in-process or direct-executor call must not inherit the
        // caller's thread-local context, only what the metadata says.
        Context parent = propagator.extract(Context.root(), headers, GETTER);
        String full = call.getMethodDescriptor().getFullMethodName();
        Span span = tracer.spanBuilder(full).setParent(parent).setSpanKind(SpanKind.SERVER)
                .setAttribute("rpc.system", "grpc").setAttribute("rpc.service", service)
                .setAttribute("rpc.method", call.getMethodDescriptor().getBareMethodName()).startSpan();
        Context context = parent.with(span);
        AtomicBoolean ended = new AtomicBoolean();
        ServerCall<Q, R> traced = new SimpleForwardingServerCall<>(call) {
            @Override
            public void close(Status status, Metadata trailers) {
                if (ended.compareAndSet(false, true)) {
                    span.setAttribute("rpc.grpc.status_code", status.getCode().value());
                    if (!status.isOk()) {
                        span.setStatus(StatusCode.ERROR, status.getCode() + (status.getDescription() == null ? ""
                                : ": " + status.getDescription()));
                    }
                    span.end();
                }
                super.close(status, trailers);
            }
        };
        ServerCall.Listener<Q> delegate;
        try (Scope ignored = context.makeCurrent()) {
            delegate = next.startCall(traced, headers);
        }
        return new SimpleForwardingServerCallListener<>(delegate) {
            @Override
            public void onMessage(Q message) {
                try (Scope ignored = context.makeCurrent()) {
                    super.onMessage(message);
                }
            }

            @Override
            public void onHalfClose() {
                try (Scope ignored = context.makeCurrent()) {
                    super.onHalfClose();
                }
            }

            @Override
            public void onCancel() {
                try (Scope ignored = context.makeCurrent()) {
                    super.onCancel();
                } finally {
                    if (ended.compareAndSet(false, true)) {
                        span.setAttribute("rpc.grpc.status_code", Status.Code.CANCELLED.value());
                        span.setStatus(StatusCode.ERROR, "CANCELLED: the client cancelled or its deadline passed");
                        span.end();
                    }
                }
            }

            @Override
            public void onComplete() {
                try (Scope ignored = context.makeCurrent()) {
                    super.onComplete();
                }
            }

            @Override
            public void onReady() {
                try (Scope ignored = context.makeCurrent()) {
                    super.onReady();
                }
            }
        };
    }
}
