package io.expertmesh.router;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.expertmesh.client.ClientConfig;
import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.telemetry.ClientSpanCustomizer;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.context.Scope;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The Java client's interceptor hook ({@link ClientConfig#withInterceptors}) with the telemetry module's tracing
 * interceptor: a span current in the calling application reaches the router, whose Generate span joins its trace.
 * Two SDKs, as in two processes: the application's and the router's, with only gRPC metadata between them.
 */
class ClientTracePropagationTest {
    @Test
    void generate_clientSpanCurrent_routerRequestSpanIsInItsTrace() throws Exception {
        InMemorySpanExporter appSpans = InMemorySpanExporter.create();
        InMemorySpanExporter routerSpans = InMemorySpanExporter.create();
        List<SpanData> app;
        List<SpanData> router;
        try (Telemetry appTelemetry = Telemetry.create(TelemetryConfig.withoutEndpoint("app"), appSpans);
             Telemetry routerTelemetry = Telemetry.create(TelemetryConfig.withoutEndpoint("router"), routerSpans);
             TestRouter r = RouterTelemetryTest.router(routerTelemetry);
             ExpertMeshClient client = ExpertMeshClient.over(r.channel, ClientConfig.defaults().withInterceptors(
                     List.of(appTelemetry.clientInterceptor(ClientSpanCustomizer.NONE))))) {
            Span operation = appTelemetry.tracer().spanBuilder("answer question").startSpan();
            try (Scope ignored = operation.makeCurrent()) {
                assertEquals(3, client.generate(RouterTelemetryTest.request(3)).tokens().size());
            } finally {
                operation.end();
            }
            // without the hook's interceptor: the router starts a trace of its own
            try (ExpertMeshClient plain = ExpertMeshClient.over(r.channel, ClientConfig.defaults());
                 Scope ignored = operation.makeCurrent()) {
                plain.generate(RouterTelemetryTest.request(1));
            }
            // A server span ends when the server closes the call, which can be just after the client saw the
            // end; so wait for both calls' spans on both sides before reading them (and before closing the SDKs).
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    DistributedTracingTest.named(routerSpans.getFinishedSpanItems(), RouterTelemetryTest.GENERATE)
                            .size() == 2
                    && DistributedTracingTest.named(appSpans.getFinishedSpanItems(), RouterTelemetryTest.GENERATE)
                            .size() == 1);
            app = appSpans.getFinishedSpanItems();
            router = routerSpans.getFinishedSpanItems();
        }
        SpanData op = RouterTelemetryTest.only(app, "answer question");
        SpanData call = RouterTelemetryTest.only(app, RouterTelemetryTest.GENERATE);
        assertEquals(SpanKind.CLIENT, call.getKind());
        assertEquals(op.getSpanId(), call.getParentSpanId(), "the client's CLIENT span is under the operation");
        List<SpanData> requests = router.stream().filter(s -> s.getName().equals(RouterTelemetryTest.GENERATE))
                .toList();
        assertEquals(2, requests.size(), router.stream().map(SpanData::getName).toList().toString());
        SpanData traced = requests.stream().filter(s -> s.getTraceId().equals(op.getTraceId())).findFirst()
                .orElseThrow(() -> new AssertionError("no router request span in the client's trace " + op.getTraceId()
                        + ": " + requests));
        assertEquals(SpanKind.SERVER, traced.getKind());
        assertEquals(call.getSpanId(), traced.getParentSpanId(), "the router's request span is the CLIENT span's child");
        SpanData untraced = requests.stream().filter(s -> s != traced).findFirst().orElseThrow();
        assertNotEquals(op.getTraceId(), untraced.getTraceId(), "no interceptor, no trace context sent");
    }
}
