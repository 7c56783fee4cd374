package io.expertmesh.router;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.experts.ExpertClusterConfig;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import io.expertmesh.worker.ExpertSelection;
import io.expertmesh.worker.ExpertWorkerServer;
import io.expertmesh.worker.WorkerConfig;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.metrics.data.HistogramPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * One request through a router and two expert workers on loopback sockets, each process with its own SDK and
 * in-memory exporter: the router's request span, its step and per-layer dispatch spans, and both workers'
 * RunExperts spans form one trace, joined through gRPC metadata.
 */
class DistributedTracingTest {
    static final EngineConfig ENGINE = new EngineConfig(4, 4L << 20, 64, 4, 8, true);
    static final String GENERATE = "expertmesh.inference.v1.InferenceService/Generate";
    static final String RUN_EXPERTS = "expertmesh.expert.v1.ExpertService/RunExperts";

    private final InMemorySpanExporter routerSpans = InMemorySpanExporter.create();
    private final InMemoryMetricReader routerMetrics = InMemoryMetricReader.create();
    private final List<InMemorySpanExporter> workerSpans = List.of(InMemorySpanExporter.create(),
            InMemorySpanExporter.create());
    private final List<Telemetry> telemetries = new ArrayList<>();
    private final List<ExpertWorkerServer> workers = new ArrayList<>();
    private TestRouter router;

    @BeforeEach
    void start() throws Exception {
        for (InMemorySpanExporter spans : workerSpans) {
            Telemetry t = Telemetry.create(TelemetryConfig.withoutEndpoint(TelemetryConfig.WORKER), spans);
            telemetries.add(t);
            ExpertWorkerServer w = new ExpertWorkerServer(new WorkerConfig(TestModels.FIXTURE, 0,
                    ExpertSelection.NONE), new VectorKernels(ComputePool.create(1)), t).start();
            w.awaitLoaded();
            workers.add(w);
        }
        Telemetry t = Telemetry.create(TelemetryConfig.withoutEndpoint(TelemetryConfig.ROUTER), routerSpans,
                routerMetrics);
        telemetries.add(t);
        ExpertClusterConfig experts = ExpertWorkers.config(workers.stream().map(w -> "127.0.0.1:" + w.port())
                .toList(), 0);
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, ENGINE, 4096, Duration.ofSeconds(2),
                io.expertmesh.kvcache.KvStoreConfig.builder(io.expertmesh.kvcache.KvStoreConfig.Mode.NONE).build(),
                experts);
        router = new TestRouter(config, (RouterServer.ModelLoader) f -> TestModels.load(TestModels.FIXTURE, f), t);
        router.server.awaitLoaded();
    }

    @AfterEach
    void stop() {
        if (router != null) {
            router.close();
        }
        workers.forEach(ExpertWorkerServer::close);
        telemetries.forEach(Telemetry::close);
    }

    static GenerateRequest request(String id, int maxTokens) {
        return GenerateRequest.newBuilder().setRequestId(id).setTokenIds(TokenIds.newBuilder()
                        .addAllIds(IntStream.of(0, 818, 726, 297, 56, 207, 375, 667).boxed().toList()))
                .setMaxTokens(maxTokens).setIgnoreEos(true).build();
    }

    @Test
    void oneRequest_oneTraceAcrossRouterAndBothWorkers() {
        assertEquals(4, router.generate(request("r1", 4)).tokens().size());

        awaitRequestSpans(1);
        List<SpanData> r = routerSpans.getFinishedSpanItems();
        List<SpanData> generate = named(r, GENERATE);
        assertEquals(1, generate.size());
        String trace = generate.getFirst().getTraceId();
        assertTrue(r.stream().allMatch(s -> s.getTraceId().equals(trace)),
                "every router span is in the request's trace: " + r);
        Set<String> stepIds = ids(named(r, "step"));
        assertEquals(4, stepIds.size(), "one step per token");
        List<SpanData> dispatch = r.stream().filter(s -> s.getKind() == SpanKind.CLIENT).toList();
        // The fixture's MoE layers 1 and 2, each dispatched from every step.
        assertEquals(Set.of("dispatch layer 1", "dispatch layer 2"),
                dispatch.stream().map(SpanData::getName).collect(Collectors.toSet()));
        assertTrue(dispatch.stream().allMatch(s -> stepIds.contains(s.getParentSpanId())),
                "dispatch spans are children of step spans");
        Set<String> dispatchIds = ids(dispatch);

        Set<String> workerAddresses = dispatch.stream().map(s -> s.getAttributes().get(
                AttributeKey.stringKey("server.address"))).collect(Collectors.toSet());
        assertEquals(2, workerAddresses.size(), "both workers were called: " + workerAddresses);
        for (int i = 0; i < 2; i++) {
            List<SpanData> runs = named(workerSpans.get(i).getFinishedSpanItems(), RUN_EXPERTS);
            assertFalse(runs.isEmpty(), "worker " + i + " has RunExperts spans");
            for (SpanData s : runs) {
                assertEquals(trace, s.getTraceId(), "worker " + i + " span in the request's trace");
                assertTrue(dispatchIds.contains(s.getParentSpanId()), "worker " + i + " span under a dispatch span");
                assertEquals(SpanKind.SERVER, s.getKind());
            }
        }

        // Per-worker RPC latency, recorded through the dispatch observer.
        MetricData rpc = routerMetrics.collectAllMetrics().stream()
                .filter(m -> m.getName().equals("expertmesh.router.expert_rpc.duration")).findFirst().orElseThrow();
        Map<String, Long> perWorker = rpc.getHistogramData().getPoints().stream().collect(Collectors.toMap(
                p -> p.getAttributes().get(AttributeKey.stringKey("worker")), HistogramPointData::getCount,
                Long::sum));
        assertEquals(workerAddresses, perWorker.keySet());
    }

    @Test
    void twoConcurrentRequests_inMicroBatches_eachStepDispatchesUnderItsTrace() throws Exception {
        CompletableFuture<TestRouter.Result> a = CompletableFuture.supplyAsync(() -> router.generate(
                request("a", 6)));
        CompletableFuture<TestRouter.Result> b = CompletableFuture.supplyAsync(() -> router.generate(
                request("b", 6)));
        assertEquals(6, a.get().tokens().size());
        assertEquals(6, b.get().tokens().size());

        awaitRequestSpans(2);
        List<SpanData> r = routerSpans.getFinishedSpanItems();
        List<SpanData> generate = named(r, GENERATE);
        assertEquals(2, generate.size());
        Set<String> workerTraces = new java.util.HashSet<>();
        workerSpans.forEach(w -> named(w.getFinishedSpanItems(), RUN_EXPERTS).forEach(s ->
                workerTraces.add(s.getTraceId())));
        for (SpanData g : generate) {
            assertTrue(workerTraces.contains(g.getTraceId()), "workers saw request " + g.getTraceId());
        }
        // Whichever micro-batch thread ran a step, its dispatches were traced under it: every step span has
        // the dispatch spans of both MoE layers below it.
        for (SpanData step : named(r, "step")) {
            Set<String> layers = r.stream().filter(s -> step.getSpanId().equals(s.getParentSpanId()))
                    .map(SpanData::getName).collect(Collectors.toSet());
            assertTrue(layers.containsAll(Set.of("dispatch layer 1", "dispatch layer 2")),
                    "step " + step.getSpanId() + " dispatched " + layers);
        }
    }

    /**
     * Waits for {@code n} finished request spans and, for every dispatch span, the worker's RunExperts span: a
     * server span ends when its server closes the call, which can be just after the client saw the end.
     */
    private void awaitRequestSpans(int n) {
        await().atMost(Duration.ofSeconds(30)).until(() -> {
            List<SpanData> r = routerSpans.getFinishedSpanItems();
            long dispatches = r.stream().filter(s -> s.getKind() == SpanKind.CLIENT).count();
            long runs = workerSpans.stream().mapToLong(w -> named(w.getFinishedSpanItems(), RUN_EXPERTS).size())
                    .sum();
            return named(r, GENERATE).size() == n && dispatches > 0 && runs == dispatches;
        });
    }

    static List<SpanData> named(List<SpanData> spans, String name) {
        return spans.stream().filter(s -> s.getName().equals(name)).toList();
    }

    static Set<String> ids(List<SpanData> spans) {
        return spans.stream().map(SpanData::getSpanId).collect(Collectors.toSet());
    }
}
