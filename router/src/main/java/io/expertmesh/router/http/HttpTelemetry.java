package io.expertmesh.router.http;

import io.expertmesh.telemetry.Telemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapPropagator;
import io.vertx.core.http.HttpServerRequest;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * HTTP requests in the router's telemetry, named as OpenTelemetry's HTTP semantic conventions name them: the
 * histogram {@code http.server.request.duration} (seconds; its count is the request count) by method, route and
 * status, and a SERVER span per request whose parent is the caller's W3C {@code traceparent}, if any. A
 * generation's own spans ({@code queue}, {@code prefill}, {@code decode}) and serving metrics come from the same
 * {@code RouterTelemetry} wrapper as gRPC's, under this span.
 */
final class HttpTelemetry {
    static final AttributeKey<String> METHOD = AttributeKey.stringKey("http.request.method");
    static final AttributeKey<String> ROUTE = AttributeKey.stringKey("http.route");
    static final AttributeKey<Long> STATUS = AttributeKey.longKey("http.response.status_code");
    // Whole generations, streamed ones included, take from milliseconds to minutes.
    static final List<Double> BUCKETS = List.of(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0, 120.0, 300.0, 600.0);

    private static final TextMapGetter<HttpServerRequest> HEADERS = new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(HttpServerRequest carrier) {
            return carrier.headers().names();
        }

        @Override
        public String get(HttpServerRequest carrier, String key) {
            return carrier == null ? null : carrier.getHeader(key);
        }
    };

    private final Tracer tracer;
    private final TextMapPropagator propagator;
    private final DoubleHistogram duration;

    HttpTelemetry(Telemetry telemetry) {
        this.tracer = telemetry.tracer();
        this.propagator = telemetry.openTelemetry().getPropagators().getTextMapPropagator();
        this.duration = telemetry.meter().histogramBuilder("http.server.request.duration").setUnit("s")
                .setDescription("HTTP API requests: arrival to the end of the answer (a stream's last event)")
                .setExplicitBucketBoundariesAdvice(BUCKETS).build();
    }

    /** A request has arrived on {@code route} (a fixed path, never the raw one: bounded cardinality). */
    Call start(HttpServerRequest request, String route) {
        Context parent = propagator.extract(Context.root(), request, HEADERS);
        String method = request.method().name();
        Span span = tracer.spanBuilder(method + " " + route).setParent(parent).setSpanKind(SpanKind.SERVER)
                .setAttribute(METHOD, method).setAttribute(ROUTE, route).startSpan();
        return new Call(method, route, span, parent.with(span));
    }

    /** One request's measurement; {@link #end} records it once. */
    final class Call {
        private final String method;
        private final String route;
        private final Span span;
        private final Context context;
        private final long startNanos = System.nanoTime();
        private final AtomicBoolean ended = new AtomicBoolean();

        private Call(String method, String route, Span span, Context context) {
            this.method = method;
            this.route = route;
            this.span = span;
            this.context = context;
        }

        /** The request's span as the current context's parent (made current around the engine submit). */
        Context context() {
            return context;
        }

        /** The answer ended ({@code aborted}: the connection closed first) with {@code status}. */
        void end(int status, boolean aborted) {
            if (!ended.compareAndSet(false, true)) {
                return;
            }
            duration.record((System.nanoTime() - startNanos) / 1e9,
                    Attributes.of(METHOD, method, ROUTE, route, STATUS, (long) status));
            span.setAttribute(STATUS, (long) status);
            if (aborted) {
                span.setAttribute("expertmesh.client_closed", true);
            }
            if (status >= 500) {
                span.setStatus(StatusCode.ERROR);
            }
            span.end();
        }
    }
}
