package io.expertmesh.router;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.metrics.data.HistogramPointData;
import io.opentelemetry.sdk.metrics.data.LongPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Request spans, serving metrics and the Prometheus endpoint of a router, on the reference fixture model. */
class RouterTelemetryTest {
    static final EngineConfig ENGINE = new EngineConfig(4, 4L << 20, 64, 4, 8, true);
    static final int[] PROMPT = {0, 818, 726, 297, 56, 207, 375, 667};
    static final String GENERATE = "expertmesh.inference.v1.InferenceService/Generate";

    static GenerateRequest request(int maxTokens) {
        return GenerateRequest.newBuilder().setRequestId("r1").setTokenIds(TokenIds.newBuilder()
                .addAllIds(IntStream.of(PROMPT).boxed().toList())).setMaxTokens(maxTokens).setIgnoreEos(true).build();
    }

    static TestRouter router(Telemetry telemetry) throws Exception {
        TestRouter r = new TestRouter(new RouterConfig(0, TestModels.FIXTURE, ENGINE, 4096, Duration.ofSeconds(2)),
                () -> TestModels.load(TestModels.FIXTURE), telemetry);
        r.server.awaitLoaded();
        return r;
    }

    @Test
    void generate_traced_requestSpanWithQueuePrefillDecodeAndSteps() throws Exception {
        InMemorySpanExporter spans = InMemorySpanExporter.create();
        List<SpanData> all;
        try (Telemetry t = Telemetry.create(TelemetryConfig.withoutEndpoint("router"), spans);
             TestRouter r = router(t)) {
            assertEquals(5, r.generate(request(5)).tokens().size());
            // The request span ends when the server closes the call, which can be just after the client saw the end.
            await().atMost(Duration.ofSeconds(30)).until(() -> spans.getFinishedSpanItems().stream()
                    .anyMatch(s -> s.getName().equals(GENERATE)));
            all = spans.getFinishedSpanItems(); // before close: shutting the exporter down empties it
        }
        SpanData req = only(all, GENERATE);
        assertEquals(SpanKind.SERVER, req.getKind());
        assertEquals("r1", req.getAttributes().get(AttributeKey.stringKey("expertmesh.request_id")));
        assertEquals(8L, req.getAttributes().get(AttributeKey.longKey("expertmesh.prompt_tokens")));
        assertEquals(5L, req.getAttributes().get(AttributeKey.longKey("expertmesh.completion_tokens")));
        assertEquals("length", req.getAttributes().get(AttributeKey.stringKey("expertmesh.finish_reason")));
        SpanData queue = only(all, "queue");
        SpanData prefill = only(all, "prefill");
        SpanData decode = only(all, "decode");
        for (SpanData phase : List.of(queue, prefill, decode)) {
            assertEquals(req.getTraceId(), phase.getTraceId());
            assertEquals(req.getSpanId(), phase.getParentSpanId(), phase.getName());
            assertTrue(phase.getStartEpochNanos() >= req.getStartEpochNanos(), phase.getName());
            assertTrue(phase.getEndEpochNanos() <= req.getEndEpochNanos(), phase.getName());
        }
        assertTrue(queue.getEndEpochNanos() <= prefill.getStartEpochNanos());
        assertTrue(prefill.getEndEpochNanos() <= decode.getStartEpochNanos());
        // One step per token: the prompt in one step (prefill), then 4 decode steps.
        List<SpanData> steps = all.stream().filter(s -> s.getName().equals("step")).toList();
        assertEquals(5, steps.size());
        assertEquals(1, steps.stream().filter(s -> s.getParentSpanId().equals(prefill.getSpanId())).count());
        assertEquals(4, steps.stream().filter(s -> s.getParentSpanId().equals(decode.getSpanId())).count());
        assertEquals(8L, steps.stream().filter(s -> s.getParentSpanId().equals(prefill.getSpanId())).findFirst()
                .orElseThrow().getAttributes().get(AttributeKey.longKey("expertmesh.step.tokens")));
    }

    @Test
    void generate_metrics_latenciesTokensAndState() throws Exception {
        InMemoryMetricReader reader = InMemoryMetricReader.create();
        try (Telemetry t = Telemetry.create(TelemetryConfig.withoutEndpoint("router"), null, reader);
             TestRouter r = router(t)) {
            r.generate(request(6));
            r.generate(request(3));
            // The engine publishes its status after the step that ended the request, which can be just after
            // the client saw the end.
            await().atMost(Duration.ofSeconds(30)).until(() -> r.server.engine().status().running() == 0);
            Map<String, MetricData> m = byName(reader.collectAllMetrics());
            assertEquals(2, histogram(m, "expertmesh.router.time_to_first_token").getCount());
            assertEquals(5 + 2, histogram(m, "expertmesh.router.inter_token_latency").getCount());
            assertEquals(2, histogram(m, "expertmesh.router.e2e_request_latency").getCount());
            assertEquals(2, histogram(m, "expertmesh.router.queue_time").getCount());
            assertTrue(histogram(m, "expertmesh.router.e2e_request_latency").getSum()
                    >= histogram(m, "expertmesh.router.time_to_first_token").getSum());
            assertEquals(9, sum(m, "expertmesh.router.generation_tokens"));
            assertEquals(16, sum(m, "expertmesh.router.prompt_tokens"));
            assertEquals(2, point(m, "expertmesh.router.requests",
                    Attributes.of(AttributeKey.stringKey("finish_reason"), "length")).getValue());
            assertEquals(0, sum(m, "expertmesh.router.requests.running"));
            assertEquals(0, sum(m, "expertmesh.router.requests.waiting"));
            long free = point(m, "expertmesh.router.kv.blocks", Attributes.of(AttributeKey.stringKey("state"),
                    "free")).getValue();
            long used = point(m, "expertmesh.router.kv.blocks", Attributes.of(AttributeKey.stringKey("state"),
                    "used")).getValue();
            assertEquals(r.blocking.getStatus(io.expertmesh.proto.inference.v1.GetStatusRequest.getDefaultInstance())
                    .getKvCache().getTotalBlocks(), free + used);
            // The same prompt twice: its 2 full blocks of 4 tokens (the last token is never reused) hit the second time.
            assertEquals(4, sum(m, "expertmesh.router.prefix_cache.hit_tokens"));
            assertTrue(m.get("expertmesh.router.prefix_cache.hit_rate").getDoubleGaugeData().getPoints().iterator()
                    .next().getValue() > 0);
            assertNotNull(m.get("grpc.server.call.duration"), m.keySet().toString());
        }
    }

    @Test
    void prometheusEndpoint_scraped_showsRouterMetricsThatMove() throws Exception {
        try (Telemetry t = Telemetry.create(new TelemetryConfig("expertmesh-router", "127.0.0.1", 0), null);
             TestRouter r = router(t);
             HttpClient http = HttpClient.newHttpClient()) {
            URI uri = URI.create("http://127.0.0.1:" + t.metricsPort().orElseThrow() + "/metrics");
            String before = http.send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString()).body();
            r.generate(request(4));
            HttpResponse<String> after = http.send(HttpRequest.newBuilder(uri).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, after.statusCode());
            String body = after.body();
            for (String name : List.of("expertmesh_router_time_to_first_token_seconds_bucket",
                    "expertmesh_router_inter_token_latency_seconds_bucket",
                    "expertmesh_router_e2e_request_latency_seconds_count", "expertmesh_router_queue_time_seconds_count",
                    "expertmesh_router_requests_running{", "expertmesh_router_requests_waiting{",
                    "expertmesh_router_kv_blocks{", "expertmesh_router_prefix_cache_hit_rate_ratio{",
                    "expertmesh_router_prefix_cache_hit_tokens_total{", "expertmesh_router_requests_total{",
                    "expertmesh_router_prompt_tokens_total{", "grpc_server_call_duration_seconds_count{")) {
                assertTrue(body.contains(name), name + " missing in\n" + body);
            }
            assertTrue(Double.isNaN(value(before, "expertmesh_router_generation_tokens_total"))
                    || value(before, "expertmesh_router_generation_tokens_total") == 0, before);
            assertEquals(4.0, value(body, "expertmesh_router_generation_tokens_total"), body);
            assertEquals(1.0, value(body, "expertmesh_router_time_to_first_token_seconds_count"), body);
            assertTrue(body.contains("service_name=\"expertmesh-router\""));
        }
    }

    static double value(String body, String name) {
        for (String line : body.split("\n")) {
            if (line.startsWith(name + "{") || line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return Double.NaN;
    }

    static SpanData only(List<SpanData> spans, String name) {
        List<SpanData> l = spans.stream().filter(s -> s.getName().equals(name)).toList();
        assertEquals(1, l.size(), name + " in " + spans.stream().map(SpanData::getName).toList());
        return l.getFirst();
    }

    static Map<String, MetricData> byName(Collection<MetricData> data) {
        return data.stream().collect(Collectors.toMap(MetricData::getName, Function.identity()));
    }

    static HistogramPointData histogram(Map<String, MetricData> m, String name) {
        MetricData d = m.get(name);
        assertNotNull(d, name + " not in " + m.keySet());
        return d.getHistogramData().getPoints().iterator().next();
    }

    static long sum(Map<String, MetricData> m, String name) {
        MetricData d = m.get(name);
        assertNotNull(d, name + " not in " + m.keySet());
        Collection<LongPointData> points = switch (d.getType()) {
            case LONG_SUM -> d.getLongSumData().getPoints();
            case LONG_GAUGE -> d.getLongGaugeData().getPoints();
            default -> throw new AssertionError(name + " is " + d.getType());
        };
        return points.stream().mapToLong(LongPointData::getValue).sum();
    }

    static LongPointData point(Map<String, MetricData> m, String name, Attributes attributes) {
        MetricData d = m.get(name);
        assertNotNull(d, name + " not in " + m.keySet());
        Collection<LongPointData> points = d.getType() == io.opentelemetry.sdk.metrics.data.MetricDataType.LONG_SUM
                ? d.getLongSumData().getPoints() : d.getLongGaugeData().getPoints();
        return points.stream().filter(p -> p.getAttributes().equals(attributes)).findFirst()
                .orElseThrow(() -> new AssertionError(name + " has no point " + attributes + ": " + points));
    }
}
