package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.metrics.data.HistogramPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** HTTP requests in the router's telemetry: the duration histogram by route and status, and their spans. */
class OpenAiHttpTelemetryTest {
    static final String TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

    @Test
    void httpRequests_measuredByRouteAndStatus_tracedOverTheRequestSpans() throws Exception {
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        InMemoryMetricReader reader = InMemoryMetricReader.create();
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        List<SpanData> finished;
        List<MetricData> metrics;
        try (Telemetry t = Telemetry.create(TelemetryConfig.withoutEndpoint("router"), spans, reader);
             RouterServer server = new RouterServer(config, t).httpPort(0)
                     .start(() -> TestModels.load(TestModels.FIXTURE))) {
            server.awaitLoaded();
            ObjectNode body = OpenAiClient.body().put("max_tokens", 3).put("ignore_eos", true);
            IntStream.of(0, 818, 726, 297).forEach(body.putArray("prompt")::add);
            OpenAiClient http = new OpenAiClient(server.httpPort());
            assertEquals(200, http.post("/v1/completions", body).status());
            assertEquals(400, http.post("/v1/completions", body.deepCopy().put("n", 4)).status());
            assertEquals(404, http.get("/v1/nothing").status());
            // a caller's trace context continues into the router
            HttpResponse<String> traced = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                    "http://127.0.0.1:" + server.httpPort() + "/v1/completions"))
                    .header("traceparent", "00-" + TRACE_ID + "-00f067aa0ba902b7-01")
                    .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, traced.statusCode());
            // the span and the measurement end as the answer ends, just after the client has it
            for (int i = 0; i < 200 && count(reader.collectAllMetrics(), "/v1/completions", 200) < 2; i++) {
                Thread.sleep(10);
            }
            metrics = List.copyOf(reader.collectAllMetrics());
            finished = spans.getFinishedSpanItems();
        }
        assertEquals(2, count(metrics, "/v1/completions", 200));
        assertEquals(1, count(metrics, "/v1/completions", 400));
        assertEquals(1, count(metrics, "other", 404));

        List<SpanData> http = finished.stream().filter(s -> s.getName().equals("POST /v1/completions")).toList();
        assertEquals(3, http.size());
        http.forEach(s -> assertEquals(SpanKind.SERVER, s.getKind()));
        SpanData fromCaller = http.stream().filter(s -> s.getTraceId().equals(TRACE_ID)).findFirst().orElseThrow();
        assertEquals("00f067aa0ba902b7", fromCaller.getParentSpanId());
        assertEquals(200L, fromCaller.getAttributes().get(AttributeKey.longKey("http.response.status_code")));
        assertEquals(3L, fromCaller.getAttributes().get(AttributeKey.longKey("expertmesh.completion_tokens")));
        for (String phase : List.of("queue", "prefill", "decode")) {
            assertTrue(finished.stream().anyMatch(s -> s.getName().equals(phase)
                    && s.getParentSpanId().equals(fromCaller.getSpanId())), phase + " under the HTTP span");
        }
    }

    static long count(java.util.Collection<MetricData> metrics, String route, long status) {
        return metrics.stream().filter(m -> m.getName().equals("http.server.request.duration"))
                .flatMap(m -> m.getHistogramData().getPoints().stream())
                .filter(p -> route.equals(p.getAttributes().get(AttributeKey.stringKey("http.route")))
                        && Long.valueOf(status).equals(p.getAttributes().get(
                                AttributeKey.longKey("http.response.status_code"))))
                .mapToLong(HistogramPointData::getCount).sum();
    }
}
