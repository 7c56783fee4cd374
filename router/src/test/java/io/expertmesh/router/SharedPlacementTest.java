package io.expertmesh.router;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.GetWorkerStatusRequest;
import io.expertmesh.proto.expert.v1.LayerStatus;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.experts.ClusterStatus;
import io.expertmesh.router.experts.ExpertCluster;
import io.expertmesh.router.experts.ExpertClusterConfig;
import io.expertmesh.router.experts.ExpertPlacement;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two routers sharing one Hazelcast cluster (embedded members, as {@code serve --kv-store embedded} runs them)
 * share one expert placement over in-process workers: both dispatch by the same plan and produce exactly the
 * tokens of a single-process run, a rebalance on one router under load fails no request on either, a killed
 * worker is re-planned once (not once per router), and a rebalance sees the load of both routers.
 */
class SharedPlacementTest {
    @TempDir
    static Path tmp;
    static Path model;
    static List<GenerateRequest> requests;
    static List<TestRouter.Result> local;
    static final EngineConfig ENGINE = new EngineConfig(8, 64L << 20, 96, 32, 64, true);

    @BeforeAll
    static void reference() throws Exception {
        model = TestModels.withTokenizer(tmp.resolve("model"));
        Random rnd = new Random(11);
        requests = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            requests.add(BatchInvarianceTest.randomRequest(rnd, 129280));
        }
        try (TestRouter r = TestRouter.started(model, ENGINE)) {
            local = new ArrayList<>();
            for (GenerateRequest q : requests) {
                local.add(r.generate(q));
            }
        }
    }

    /** Two routers on one Hazelcast cluster of their two embedded members, started at once. */
    static List<TestRouter> twoRouters(ExpertClusterConfig experts) throws Exception {
        int pa = freePort();
        int pb = freePort();
        KvStoreConfig.Builder kv = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED)
                .clusterName("shared-placement-" + UUID.randomUUID()).partitionCount(23)
                .members(List.of("127.0.0.1:" + pa, "127.0.0.1:" + pb)).maxEntriesPerMember(1000);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<TestRouter>> starting = new ArrayList<>();
            for (int port : List.of(pa, pb)) {
                RouterConfig config = new RouterConfig(0, model, ENGINE, 4096, Duration.ofSeconds(2),
                        kv.memberPort(port).build(), experts);
                starting.add(pool.submit(() -> {
                    TestRouter r = new TestRouter(config, (RouterServer.ModelLoader) f -> TestModels.load(model, f));
                    r.server.awaitLoaded();
                    return r;
                }));
            }
            List<TestRouter> out = new ArrayList<>();
            for (Future<TestRouter> f : starting) {
                out.add(f.get(120, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            pool.shutdown();
        }
    }

    /** Every request on both routers at once; {@code during} runs once the first tokens came back. */
    static List<List<TestRouter.Result>> runOnBoth(List<TestRouter> routers, Consumer<List<TestRouter>> during)
            throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(routers.size() * requests.size())) {
            List<List<CompletableFuture<TestRouter.Result>>> fs = new ArrayList<>();
            for (TestRouter r : routers) {
                List<CompletableFuture<TestRouter.Result>> mine = new ArrayList<>();
                for (GenerateRequest q : requests) {
                    mine.add(CompletableFuture.supplyAsync(() -> r.generate(q), pool));
                }
                fs.add(mine);
            }
            await().atMost(Duration.ofSeconds(120)).until(() -> routers.stream()
                    .allMatch(r -> r.server.engine().status().generatedTokens() >= 20)
                    || fs.stream().flatMap(List::stream).anyMatch(CompletableFuture::isDone));
            during.accept(routers);
            List<List<TestRouter.Result>> out = new ArrayList<>();
            for (List<CompletableFuture<TestRouter.Result>> mine : fs) {
                List<TestRouter.Result> got = new ArrayList<>();
                for (CompletableFuture<TestRouter.Result> f : mine) {
                    got.add(f.get(180, TimeUnit.SECONDS));
                }
                out.add(got);
            }
            return out;
        }
    }

    static void assertSameAsLocal(List<List<TestRouter.Result>> perRouter) {
        for (int r = 0; r < perRouter.size(); r++) {
            for (int i = 0; i < local.size(); i++) {
                assertEquals(local.get(i).tokens(), perRouter.get(r).get(i).tokens(),
                        "router " + r + " request " + i + ": tokens and logprobs");
                assertEquals(local.get(i).finished().getReason(), perRouter.get(r).get(i).finished().getReason());
            }
        }
    }

    static ExpertCluster experts(TestRouter r) {
        return r.server.experts();
    }

    /** Waits until both routers dispatch by the same epoch, and returns that plan. */
    static ExpertPlacement awaitOnePlan(List<TestRouter> routers) {
        await().atMost(Duration.ofSeconds(30)).until(() ->
                experts(routers.get(0)).placement().epoch() == experts(routers.get(1)).placement().epoch());
        ExpertPlacement a = experts(routers.get(0)).placement();
        ExpertPlacement b = experts(routers.get(1)).placement();
        assertEquals(held(a), held(b), "both routers dispatch by one plan");
        return a;
    }

    /** worker → "layer:[ids]" of a plan, comparable with equals. */
    static Map<String, String> held(ExpertPlacement p) {
        Map<String, String> out = new TreeMap<>();
        p.byWorker().forEach((w, layers) -> {
            StringBuilder sb = new StringBuilder();
            layers.forEach((l, ids) -> sb.append(l).append(':').append(java.util.Arrays.toString(ids)).append(' '));
            out.put(w, sb.toString());
        });
        return out;
    }

    /** worker → what it really holds, asked over gRPC, in the form of {@link #held}. */
    static Map<String, String> heldByWorkers(List<String> addresses) {
        Map<String, String> out = new TreeMap<>();
        for (String a : addresses) {
            ManagedChannel ch = ManagedChannelBuilder.forTarget(a).usePlaintext().build();
            try {
                StringBuilder sb = new StringBuilder();
                for (LayerStatus l : ExpertServiceGrpc.newBlockingStub(ch)
                        .getWorkerStatus(GetWorkerStatusRequest.getDefaultInstance()).getLayersList()) {
                    sb.append(l.getLayer()).append(':').append(l.getExpertIdsList()).append(' ');
                }
                if (!sb.isEmpty()) {
                    out.put(a, sb.toString());
                }
            } finally {
                ch.shutdownNow();
            }
        }
        return out;
    }

    static long changes(List<TestRouter> routers) {
        return routers.stream().mapToLong(r -> experts(r).placementChanges()).sum();
    }

    @Test
    void twoRouters_startedAtOnce_placeOnceAndDispatchByOnePlan_outputsMatchSingleProcess() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 3)) {
            List<TestRouter> routers = twoRouters(ExpertWorkers.config(workers.addresses(3), 2));
            try {
                assertTrue(experts(routers.get(0)).sharedPlacement() && experts(routers.get(1)).sharedPlacement());
                assertEquals(1, changes(routers), "one router placed the experts, the other adopted its plan");
                ExpertPlacement plan = awaitOnePlan(routers);
                assertEquals(2 * (8 + 2), plan.replicaCount(), "2 MoE layers × (8 + 2), loaded once");
                assertEquals(held(plan), heldByWorkers(workers.addresses(3)), "workers hold exactly the plan");
                assertSameAsLocal(runOnBoth(routers, x -> { }));
                for (TestRouter r : routers) {
                    for (ClusterStatus.Worker w : experts(r).status().workers()) {
                        assertTrue(w.stats().calls() > 0, "each router uses every worker: " + w.stats());
                    }
                }
            } finally {
                routers.forEach(TestRouter::close);
            }
        }
    }

    @Test
    void rebalanceOnOneRouterUnderLoad_failsNoRequestOnEither_andOldCopiesAreUnloaded() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2)) {
            List<TestRouter> routers = twoRouters(ExpertWorkers.config(workers.addresses(2), 3));
            try {
                long before = awaitOnePlan(routers).epoch();
                assertSameAsLocal(runOnBoth(routers, rs -> {
                    for (int i = 0; i < 3; i++) {
                        experts(rs.get(0)).rebalance();
                    }
                    experts(rs.get(1)).rebalance();
                }));
                ExpertPlacement plan = awaitOnePlan(routers);
                assertTrue(plan.epoch() >= before + 4, "four rebalances: " + before + " → " + plan.epoch());
                assertEquals(3, experts(routers.get(0)).status().rebalances());
                assertEquals(1, experts(routers.get(1)).status().rebalances());
                assertEquals(held(plan), heldByWorkers(workers.addresses(2)),
                        "copies only the old plans used were unloaded, once both routers moved on");
            } finally {
                routers.forEach(TestRouter::close);
            }
        }
    }

    @Test
    void rebalance_seesTheLoadOfEveryRouter() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2)) {
            List<TestRouter> routers = twoRouters(ExpertWorkers.config(workers.addresses(2), 2));
            try {
                awaitOnePlan(routers);
                TestRouter a = routers.get(0);
                TestRouter b = routers.get(1);
                b.generate(requests.getFirst()); // traffic on B only
                long onB = total(experts(b).status());
                assertTrue(onB > 0);
                // A's view of the load is B's, merged in as B reports it
                await().atMost(Duration.ofSeconds(30)).until(() -> total(experts(a).status()) == onB);
                ExpertPlacement plan = experts(a).rebalance();
                ExpertCluster.Rebalance last = experts(a).status().lastRebalance();
                assertTrue(last.imbalanceBefore() > 0, "the rebalance weighed B's load: " + last);
                assertEquals(plan.epoch(), last.epoch());
                // the rebalance started a new load window on both routers
                await().atMost(Duration.ofSeconds(30)).until(() -> total(experts(b).status()) == 0
                        && total(experts(a).status()) == 0);
            } finally {
                routers.forEach(TestRouter::close);
            }
        }
    }

    private static long total(ClusterStatus s) {
        return s.layers().stream().flatMapToLong(l -> java.util.Arrays.stream(l.expertTokens())).sum();
    }

    @Test
    void killedWorkerUnderLoad_isReplannedOnce_andNoRequestFails() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2)) {
            List<TestRouter> routers = twoRouters(ExpertWorkers.config(workers.addresses(2), 0));
            try {
                awaitOnePlan(routers);
                long before = changes(routers);
                List<String> addresses = workers.addresses(2);
                String dead = addresses.getFirst();
                assertSameAsLocal(runOnBoth(routers, rs -> workers.kill(0)));
                // Both routers found it dead (a failed call or a health check), each on its own ...
                await().atMost(Duration.ofSeconds(30)).until(() -> routers.stream().allMatch(r ->
                        experts(r).status().workers().stream().noneMatch(w -> w.stats().address().equals(dead)
                                && w.stats().live())));
                ExpertPlacement plan = awaitOnePlan(routers);
                // ... and the plan changed once.
                assertEquals(before + 1, changes(routers), "one plan change for one dead worker");
                assertFalse(plan.holds(dead), "the dead worker holds nothing");
                assertTrue(plan.unplaced().isEmpty());
                assertEquals(held(plan), heldByWorkers(addresses.subList(1, 2)));
            } finally {
                routers.forEach(TestRouter::close);
            }
        }
    }

    @Test
    void oneRouterGone_theOtherStillChangesThePlanAndServes_andPublishesALostPlanAgain() throws Exception {
        try (ExpertWorkers workers = new ExpertWorkers(model, 2)) {
            List<TestRouter> routers = twoRouters(ExpertWorkers.config(workers.addresses(2), 2));
            TestRouter b = routers.get(1);
            try {
                awaitOnePlan(routers);
                routers.getFirst().close();
                ExpertPlacement plan = experts(b).rebalance();
                assertEquals(plan.epoch(), experts(b).placement().epoch());
                assertEquals(held(plan), heldByWorkers(workers.addresses(2)));
                assertEquals(local.getFirst().tokens(), b.generate(requests.getFirst()).tokens());

                // The tier loses the plan (as when every cache node restarts): B publishes its own again, so a
                // router starting now adopts it instead of placing the experts from scratch.
                var hz = com.hazelcast.core.Hazelcast.getAllHazelcastInstances().stream()
                        .filter(h -> h.getConfig().getClusterName().startsWith("shared-placement-")
                                && h.getLifecycleService().isRunning()).findFirst().orElseThrow();
                com.hazelcast.map.IMap<String, io.expertmesh.router.experts.SharedPlan> plans =
                        hz.getMap(io.expertmesh.router.experts.HazelcastPlacementStore.mapName("default"));
                plans.clear();
                await().atMost(Duration.ofSeconds(30)).until(() -> plans.get("plan") != null);
                assertEquals(experts(b).placement().epoch(), plans.get("plan").epoch());
                assertEquals(held(plan), held(plans.get("plan").placement()));
            } finally {
                b.close();
            }
        }
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
