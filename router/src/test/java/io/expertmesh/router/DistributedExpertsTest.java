package io.expertmesh.router;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.router.experts.ClusterStatus;
import io.expertmesh.router.experts.ExpertClusterConfig;
import io.expertmesh.router.experts.WireFormat;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A router whose routed experts run on expert workers over loopback sockets produces exactly the tokens and
 * logprobs of a router with its experts in process: with 1, 2 and 3 workers, with redundant replicas, while a
 * worker is killed, and while the placement is rebalanced.
 */
class DistributedExpertsTest {
    @TempDir
    static Path tmp;
    static Path model;
    static List<GenerateRequest> requests;
    static List<TestRouter.Result> local;
    static final EngineConfig ENGINE = new EngineConfig(8, 64L << 20, 96, 32, 64, true);

    @BeforeAll
    static void reference() throws Exception {
        model = TestModels.withTokenizer(tmp.resolve("model"));
        Random rnd = new Random(5);
        requests = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            requests.add(BatchInvarianceTest.randomRequest(rnd, 129280));
        }
        try (TestRouter r = TestRouter.started(model, ENGINE)) {
            local = runAll(r, requests, x -> { });
        }
    }

    /** Runs every request at once; {@code during} is called once the first tokens have come back. */
    static List<TestRouter.Result> runAll(TestRouter r, List<GenerateRequest> reqs, Consumer<TestRouter> during)
            throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(reqs.size())) {
            List<CompletableFuture<TestRouter.Result>> fs = new ArrayList<>();
            for (GenerateRequest q : reqs) {
                fs.add(CompletableFuture.supplyAsync(() -> r.generate(q), pool));
            }
            while (r.server.engine().status().generatedTokens() < 20 && !fs.getFirst().isDone()) {
                Thread.sleep(5);
            }
            during.accept(r);
            List<TestRouter.Result> out = new ArrayList<>();
            for (CompletableFuture<TestRouter.Result> f : fs) {
                out.add(f.get(180, TimeUnit.SECONDS));
            }
            return out;
        }
    }

    static void assertSameAsLocal(List<TestRouter.Result> got) {
        for (int i = 0; i < local.size(); i++) {
            assertEquals(local.get(i).tokens(), got.get(i).tokens(), "request " + i + ": tokens and logprobs");
            assertEquals(local.get(i).finished().getReason(), got.get(i).finished().getReason(), "request " + i);
            assertEquals(local.get(i).finished().getUsage().getCompletionTokens(),
                    got.get(i).finished().getUsage().getCompletionTokens(), "request " + i);
        }
    }

    @Test
    void oneTwoAndThreeWorkers_matchInProcessExactly() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 3)) {
            for (int n = 1; n <= 3; n++) {
                try (TestRouter r = ExpertWorkers.router(model, ENGINE,
                        ExpertWorkers.config(workers.addresses(n), 0))) {
                    assertSameAsLocal(runAll(r, requests, x -> { }));
                    ClusterStatus s = r.server.experts().status();
                    assertEquals(n, s.workers().size());
                    for (ClusterStatus.Worker w : s.workers()) {
                        assertTrue(w.stats().calls() > 0, "every worker is used: " + w.stats());
                    }
                    assertTrue(s.layers().getFirst().dispatches() > 0);
                    // every successful call's time is split by what the worker reports
                    ClusterStatus.Breakdown d = s.breakdown();
                    assertTrue(d.calls() > 0 && d.calls() <= s.workers().stream()
                            .mapToLong(w -> w.stats().calls()).sum(), d.toString());
                    assertTrue(d.computeP99Millis() > 0, "the workers report compute time: " + d);
                }
            }
        }
    }

    @Test
    void oneMicroBatch_andRedundantReplicas_matchInProcessExactly() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 3);
             TestRouter r = ExpertWorkers.router(model, ENGINE,
                     ExpertWorkers.config(workers.addresses(3), 5).withMicroBatches(1))) {
            assertEquals(2 * (8 + 5), r.server.experts().placement().replicaCount(), "2 MoE layers × (8 + 5)");
            assertSameAsLocal(runAll(r, requests, x -> { }));
        }
    }

    @Test
    void killedWorker_withAReplicaOfEveryExpert_noRequestFailsAndOutputsMatch() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 3);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(3), 8))) {
            assertSameAsLocal(runAll(r, requests, x -> workers.kill(1)));
            ClusterStatus s = r.server.experts().status();
            assertFalse(s.workers().get(1).stats().live(), "the killed worker is out");
            assertTrue(s.unplaced().isEmpty());
        }
    }

    @Test
    void killedWorker_withoutRedundancy_itsExpertsAreReassignedAndOutputsMatch() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(2), 0))) {
            assertSameAsLocal(runAll(r, requests, x -> workers.kill(0)));
            ClusterStatus s = r.server.experts().status();
            assertEquals(2 * 8, s.workers().get(1).experts().values().stream().mapToInt(a -> a.length).sum(),
                    "the survivor holds every expert");
        }
    }

    @Test
    void rebalanceUnderLoad_noRequestFailsAndOutputsMatch() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(2), 3))) {
            long before = r.server.experts().placement().epoch();
            assertSameAsLocal(runAll(r, requests, x -> {
                for (int i = 0; i < 4; i++) {
                    x.server.experts().rebalance();
                }
            }));
            assertTrue(r.server.experts().placement().epoch() >= before + 4);
            assertEquals(4, r.server.experts().status().rebalances());
        }
    }

    @Test
    void noLiveWorker_requestFailsUnavailableNamingExperts() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 1);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(1), 0))) {
            workers.kill(0);
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> r.generate(requests.get(0)));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
            assertTrue(e.getStatus().getDescription().contains("expert"), e.getStatus().getDescription());
        }
    }

    /** Workers behind proxies that can freeze; the dispatch deadline is far beyond the test's timeout. */
    static ExpertClusterConfig frozenTestConfig(List<String> workers, int redundant, Duration healthInterval,
                                                ExpertClusterConfig.Hedge hedge) {
        return new ExpertClusterConfig(workers, redundant, WireFormat.EXACT, Duration.ofMinutes(10),
                Duration.ofSeconds(20), healthInterval, Duration.ofSeconds(20), Duration.ZERO, 2, hedge);
    }

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void frozenWorker_withoutReplicas_itsCallsInFlightMoveOnceHealthTakesItOut() throws Exception {
        // Hedging off: only the health check can find the frozen worker; its calls in flight must not wait for
        // the 10-minute dispatch deadline.
        try (ExpertWorkers workers = new ExpertWorkers(model, 2);
             FreezableProxy proxy = new FreezableProxy(workers.servers.get(1).port());
             TestRouter r = ExpertWorkers.router(model, ENGINE, frozenTestConfig(
                     List.of(workers.addresses(1).getFirst(), proxy.address()), 0, Duration.ofMillis(200),
                     ExpertClusterConfig.Hedge.OFF))) {
            assertSameAsLocal(runAll(r, requests, x -> proxy.freeze()));
            ClusterStatus s = r.server.experts().status();
            assertFalse(s.workers().get(1).stats().live(), "the frozen worker is out");
            assertEquals(2 * 8, s.workers().get(0).experts().values().stream().mapToInt(a -> a.length).sum(),
                    "the other worker holds every expert");
            proxy.unfreeze();
        }
    }

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void frozenWorker_withReplicas_slowCallsAreHedgedToReplicasBeforeHealthNotices() throws Exception {
        // Health checks every 10 minutes: only hedging can route around the freeze. Hedge at the observed p99 (not
        // 4×), so that on a loaded machine it fires well before the transport's own 10 s timeout could.
        try (ExpertWorkers workers = new ExpertWorkers(model, 2);
             FreezableProxy proxy = new FreezableProxy(workers.servers.get(1).port());
             TestRouter r = ExpertWorkers.router(model, ENGINE, frozenTestConfig(
                     List.of(workers.addresses(1).getFirst(), proxy.address()), 8, Duration.ofMinutes(10),
                     new ExpertClusterConfig.Hedge(1, Duration.ofMillis(100), 32)))) {
            assertSameAsLocal(runAll(r, requests, x -> { })); // the p99 to hedge by
            assertTrue(r.server.experts().status().workers().get(1).stats().calls() >= 32);
            assertSameAsLocal(runAll(r, requests, x -> proxy.freeze()));
            // Done long before the 10-minute deadline and health interval: hedging got the pairs back. (With
            // keepalive on, the transport sets TCP_USER_TIMEOUT to the 10 s keepalive timeout, so a link whose peer
            // stopped reading can also end in ETIMEDOUT and take the worker out; hedging itself never does, so
            // whether it is still live is not asserted.)
            assertTrue(r.server.experts().hedges() > 0, "calls were hedged");
            proxy.unfreeze();
        }
    }

    @Test
    void noLiveWorker_healthIsNotServingUntilAWorkerIsBack() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(1), 0))) {
            String spare = workers.addresses(2).get(1);
            HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(r.channel);
            assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
            assertTrue(r.blocking.getStatus(GetStatusRequest.getDefaultInstance()).getServing());

            workers.kill(0);
            await().atMost(Duration.ofSeconds(60)).until(() ->
                    health.check(HealthCheckRequest.getDefaultInstance()).getStatus() == ServingStatus.NOT_SERVING);
            assertFalse(r.blocking.getStatus(GetStatusRequest.getDefaultInstance()).getServing(),
                    "GetStatus agrees with health");

            r.server.experts().register(spare);
            await().atMost(Duration.ofSeconds(60)).until(() ->
                    health.check(HealthCheckRequest.getDefaultInstance()).getStatus() == ServingStatus.SERVING);
            assertTrue(r.blocking.getStatus(GetStatusRequest.getDefaultInstance()).getServing());
            assertEquals(local.getFirst().tokens(), r.generate(requests.getFirst()).tokens());
        }
    }

    @Test
    void workerLosingItsExperts_refusesWithTypedReason_andTheRouterReloadsThem() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 1);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(1), 0))) {
            // As if the worker restarted: it no longer holds what the router's plan gives it.
            io.grpc.ManagedChannel ch = io.grpc.ManagedChannelBuilder.forTarget(workers.addresses(1).getFirst())
                    .usePlaintext().build();
            try {
                var stub = io.expertmesh.proto.expert.v1.ExpertServiceGrpc.newBlockingStub(ch);
                var unload = io.expertmesh.proto.expert.v1.UnloadExpertsRequest.newBuilder();
                for (int layer : stub.getWorkerStatus(io.expertmesh.proto.expert.v1.GetWorkerStatusRequest
                        .getDefaultInstance()).getMoeLayersList()) {
                    var l = io.expertmesh.proto.expert.v1.LayerExperts.newBuilder().setLayer(layer);
                    for (int e = 0; e < 8; e++) {
                        l.addExpertIds(e);
                    }
                    unload.addLayers(l);
                }
                stub.unloadExperts(unload.build());
            } finally {
                ch.shutdownNow();
            }
            assertSameAsLocal(runAll(r, requests, x -> { }));
            assertTrue(r.server.experts().status().workers().getFirst().stats().live(), "reloaded, not taken out");
        }
    }

    @Test
    void workerRegisteringAtRuntime_getsExpertsAndServes() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(1), 0))) {
            String late = workers.addresses(2).get(1);
            r.server.experts().register(late);
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!r.server.experts().placement().byWorker().containsKey(late)) {
                assertTrue(System.nanoTime() < end, "the registered worker never got experts");
                Thread.sleep(20);
            }
            assertSameAsLocal(runAll(r, requests, x -> { }));
            ClusterStatus s = r.server.experts().status();
            assertTrue(s.workers().get(1).stats().calls() > 0, "the new worker serves: " + s.workers().get(1));
            assertEquals(Set.of(), r.server.experts().workersWithOtherKernels(), "same kernels as the router");
            assertThrows(IllegalArgumentException.class, () -> r.server.experts().register("not an address"));
        }
    }

    @Test
    void workerWithOtherKernels_servesAndIsNamed() throws Exception {
        // Where this process runs the native kernels, a worker kept on the Vector API ones computes other bits.
        assumeTrue(VectorKernels.defaultMatmulKind().startsWith("native"), "no native kernels here");
        try (ExpertWorkers workers = new ExpertWorkers(model, 1, false);
             TestRouter r = ExpertWorkers.router(model, ENGINE, ExpertWorkers.config(workers.addresses(1), 0))) {
            r.server.awaitLoaded();
            assertEquals(Set.copyOf(workers.addresses(1)), r.server.experts().workersWithOtherKernels());
            for (TestRouter.Result res : runAll(r, requests, x -> { })) {
                assertTrue(res.finished().getUsage().getCompletionTokens() > 0, "served: " + res.finished());
            }
        }
    }

    @Test
    void workerOfAnotherModel_routerFailsToLoadNamingTheDifference() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(TestModels.FIXTURE, 1)) {
            RouterConfig config = new RouterConfig(0, model, ENGINE, 4096, java.time.Duration.ofSeconds(2),
                    io.expertmesh.kvcache.KvStoreConfig.builder(io.expertmesh.kvcache.KvStoreConfig.Mode.NONE).build(),
                    ExpertWorkers.config(workers.addresses(1), 0));
            try (TestRouter r = new TestRouter(config, (RouterServer.ModelLoader) f -> TestModels.load(model, f))) {
                IllegalStateException e = assertThrows(IllegalStateException.class, r.server::awaitLoaded);
                assertTrue(e.getMessage().contains("serves another model") && e.getMessage().contains("hidden size"),
                        e.getMessage());
            }
        }
    }
}
