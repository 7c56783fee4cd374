package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Scope;
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
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A worker's spans (children of the caller's span via gRPC metadata), metrics and Prometheus endpoint. */
class WorkerTelemetryTest {
    private static final int[] ALL = {0, 1, 2, 3, 4, 5, 6, 7};
    static final String RUN = "expertmesh.expert.v1.ExpertService/RunExperts";

    private final InMemorySpanExporter workerSpans = InMemorySpanExporter.create();
    private final InMemorySpanExporter routerSpans = InMemorySpanExporter.create();
    private final InMemoryMetricReader workerMetrics = InMemoryMetricReader.create();
    private Telemetry workerTelemetry;
    private Telemetry routerTelemetry;
    private ExpertWorkerServer server;
    private ManagedChannel channel;

    private ExpertServiceGrpc.ExpertServiceBlockingStub start(TelemetryConfig config) throws Exception {
        workerTelemetry = Telemetry.create(config, workerSpans, workerMetrics);
        routerTelemetry = Telemetry.create(TelemetryConfig.withoutEndpoint("router"), routerSpans);
        String name = InProcessServerBuilder.generateName();
        server = new ExpertWorkerServer(new WorkerConfig(WorkerFixture.MODEL, 0, ExpertSelection.parse("all")),
                WorkerFixture.kernels(), InProcessServerBuilder.forName(name).directExecutor(), workerTelemetry)
                .start();
        server.awaitLoaded();
        InProcessChannelBuilder cb = InProcessChannelBuilder.forName(name).directExecutor();
        routerTelemetry.configureChannel(cb);
        channel = cb.build();
        return ExpertServiceGrpc.newBlockingStub(channel);
    }

    @AfterEach
    void stop() {
        if (channel != null) {
            channel.shutdownNow();
        }
        if (server != null) {
            server.close();
        }
        if (workerTelemetry != null) {
            workerTelemetry.close();
            routerTelemetry.close();
        }
    }

    @Test
    void runExperts_underCallerSpan_workerSpanIsItsChildWithLayerAndTokens() throws Exception {
        var stub = start(TelemetryConfig.withoutEndpoint(TelemetryConfig.WORKER));
        RunExpertsRequest req = WorkerFixture.randomRequest(new Random(3), 2, 5, HiddenEncoding.HIDDEN_ENCODING_F32,
                ALL);
        Span dispatch = routerTelemetry.tracer().spanBuilder("dispatch layer 2").startSpan();
        try (Scope ignored = dispatch.makeCurrent()) {
            stub.runExperts(req);
        } finally {
            dispatch.end();
        }
        SpanData s = workerSpans.getFinishedSpanItems().stream().filter(x -> x.getName().equals(RUN)).findFirst()
                .orElseThrow(() -> new AssertionError(workerSpans.getFinishedSpanItems().toString()));
        assertEquals(SpanKind.SERVER, s.getKind());
        assertEquals(dispatch.getSpanContext().getTraceId(), s.getTraceId());
        // The caller's channel wraps the call in a CLIENT span under "dispatch layer 2"; that span is the parent.
        SpanData call = routerSpans.getFinishedSpanItems().stream().filter(x -> x.getKind() == SpanKind.CLIENT)
                .findFirst().orElseThrow();
        assertEquals(dispatch.getSpanContext().getSpanId(), call.getParentSpanId());
        assertEquals(call.getSpanId(), s.getParentSpanId());
        assertEquals(2L, s.getAttributes().get(AttributeKey.longKey("expertmesh.layer")));
        assertEquals(5L, s.getAttributes().get(AttributeKey.longKey("expertmesh.tokens")));
        assertEquals((long) req.getExpertIdsCount(), s.getAttributes().get(AttributeKey.longKey(
                "expertmesh.assignments")));
    }

    @Test
    void runExperts_metrics_tokensPerExpertAndLatencyByStatus() throws Exception {
        var stub = start(TelemetryConfig.withoutEndpoint(TelemetryConfig.WORKER));
        Random rnd = new Random(5);
        Map<Attributes, Long> expected = new HashMap<>();
        for (int layer : new int[]{1, 2, 2}) {
            RunExpertsRequest req = WorkerFixture.randomRequest(rnd, layer, 7, HiddenEncoding.HIDDEN_ENCODING_BF16,
                    ALL);
            stub.runExperts(req);
            for (int e : req.getExpertIdsList()) {
                expected.merge(Attributes.of(WorkerTelemetry.LAYER, (long) layer, WorkerTelemetry.EXPERT, (long) e),
                        1L, Long::sum);
            }
        }
        // Layer 0 is dense in the fixture: FAILED_PRECONDITION, timed, no expert tokens.
        RunExpertsRequest dense = WorkerFixture.randomRequest(rnd, 0, 2, HiddenEncoding.HIDDEN_ENCODING_F32, ALL);
        assertThrows(StatusRuntimeException.class, () -> stub.runExperts(dense));

        Map<String, MetricData> m = new HashMap<>();
        workerMetrics.collectAllMetrics().forEach(d -> m.put(d.getName(), d));
        MetricData tokens = m.get("expertmesh.worker.expert.tokens");
        assertNotNull(tokens, m.keySet().toString());
        Map<Attributes, Long> actual = new HashMap<>();
        for (LongPointData p : tokens.getLongSumData().getPoints()) {
            actual.put(p.getAttributes(), p.getValue());
        }
        assertEquals(expected, actual);

        Map<Attributes, Long> calls = new HashMap<>();
        for (HistogramPointData p : m.get("expertmesh.worker.run_experts.duration").getHistogramData().getPoints()) {
            calls.put(p.getAttributes(), p.getCount());
        }
        assertEquals(Map.of(
                Attributes.of(WorkerTelemetry.LAYER, 1L, WorkerTelemetry.STATUS, "OK"), 1L,
                Attributes.of(WorkerTelemetry.LAYER, 2L, WorkerTelemetry.STATUS, "OK"), 2L,
                Attributes.of(WorkerTelemetry.LAYER, 0L, WorkerTelemetry.STATUS, "FAILED_PRECONDITION"), 1L), calls);
        assertNotNull(m.get("grpc.server.call.duration"));

        SpanData failed = workerSpans.getFinishedSpanItems().stream().filter(x -> x.getName().equals(RUN))
                .filter(x -> x.getStatus().getStatusCode() == StatusCode.ERROR).findFirst().orElseThrow();
        assertTrue(failed.getStatus().getDescription().startsWith("FAILED_PRECONDITION"),
                failed.getStatus().getDescription());
    }

    @Test
    void prometheusEndpoint_scraped_showsExpertTokens() throws Exception {
        var stub = start(new TelemetryConfig(TelemetryConfig.WORKER, "127.0.0.1", 0));
        RunExpertsRequest req = RunExpertsRequest.newBuilder(WorkerFixture.randomRequest(new Random(1), 1, 1,
                HiddenEncoding.HIDDEN_ENCODING_F32, new int[]{3})).build();
        stub.runExperts(req);
        try (HttpClient http = HttpClient.newHttpClient()) {
            String body = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                    + workerTelemetry.metricsPort().orElseThrow() + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(body.contains("expertmesh_worker_expert_tokens_total{expert=\"3\",layer=\"1\""), body);
            assertTrue(body.contains("expertmesh_worker_run_experts_duration_seconds_count{layer=\"1\""), body);
            assertTrue(body.contains("grpc_server_call_duration_seconds_count"), body);
            assertTrue(body.contains("service_name=\"expertmesh-worker\""), body);
        }
    }
}
