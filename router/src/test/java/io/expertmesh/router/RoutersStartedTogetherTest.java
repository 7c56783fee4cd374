package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Routers started at once on one host, each with an embedded KV member on the same port range (what
 * {@code serve} builds from the default {@code --kv-port}/{@code --kv-port-count}). Every round all of them come
 * up SERVING in one KV cluster, and a prefix computed on one is adopted by the others.
 */
class RoutersStartedTogetherTest {
    private static final int ROUTERS = 3;
    private static final int ROUNDS = 3;
    private static final int PREFIX = 256;
    private static final EngineConfig ENGINE = new EngineConfig(16, 32L << 20, 1024, 8, 8, true);

    @TempDir
    Path tmp;

    @Test
    void routersStartedAtOnce_sharePortRange_allServingInOneClusterAndShareAPrefix() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        for (int round = 0; round < ROUNDS; round++) {
            String cluster = "routers-together-" + UUID.randomUUID();
            int first = freeRange(ROUTERS + 1);
            List<String> range = new ArrayList<>();
            for (int p = first; p <= first + ROUTERS; p++) {
                range.add("127.0.0.1:" + p);
            }
            KvStoreConfig kv = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).clusterName(cluster)
                    .members(range).memberPort(first).memberPortCount(ROUTERS + 1).partitionCount(23)
                    .maxEntriesPerMember(10_000).publishQueueCapacity(512).lookupTimeoutMillis(5_000).build();
            List<TestRouter> routers = startAtOnce(model, kv);
            try {
                for (TestRouter r : routers) {
                    r.server.awaitLoaded();
                    assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(r.channel)
                            .check(HealthCheckRequest.getDefaultInstance()).getStatus(), "round " + round);
                }
                String where = "round " + round;
                awaitTrue(() -> members(cluster).size() == ROUTERS && members(cluster).stream()
                        .allMatch(hz -> hz.getCluster().getMembers().size() == ROUTERS), where + ": one cluster");

                GenerateRequest request = PrefixCacheTest.request(randomPrefix(round), 7, 8);
                TestRouter.Result cold = routers.get(0).generate(request);
                assertEquals(0, cold.finished().getUsage().getCachedPromptTokens(), where);
                awaitTrue(() -> {
                    var s = routers.get(0).blocking.getStatus(GetStatusRequest.getDefaultInstance()).getKvStore();
                    return s.getPublished() >= PREFIX / 16;
                }, where + ": prefix published");
                for (TestRouter other : routers.subList(1, ROUTERS)) {
                    TestRouter.Result warm = other.generate(request);
                    assertTrue(warm.finished().getUsage().getCachedPromptTokens() >= PREFIX - 16,
                            where + ": adopted " + warm.finished().getUsage().getCachedPromptTokens());
                    assertEquals(cold.tokens(), warm.tokens(), where + ": output equals the cold run");
                }
            } finally {
                routers.forEach(TestRouter::close);
            }
        }
    }

    private static List<TestRouter> startAtOnce(Path model, KvStoreConfig kv) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(ROUTERS);
        try {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<TestRouter>> starting = new ArrayList<>();
            for (int i = 0; i < ROUTERS; i++) {
                starting.add(pool.submit(() -> {
                    go.await();
                    return TestRouter.withKvStore(model, ENGINE, kv);
                }));
            }
            go.countDown();
            List<TestRouter> out = new ArrayList<>();
            for (Future<TestRouter> f : starting) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdown();
        }
    }

    private static List<HazelcastInstance> members(String cluster) {
        return Hazelcast.getAllHazelcastInstances().stream()
                .filter(hz -> hz.getConfig().getClusterName().equals(cluster)).toList();
    }

    private static int[] randomPrefix(long seed) {
        Random rnd = new Random(seed);
        int[] prefix = new int[PREFIX];
        for (int i = 1; i < prefix.length; i++) {
            prefix[i] = 2 + rnd.nextInt(120000);
        }
        return prefix;
    }

    private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    /** The first of {@code count} consecutive ports free now on loopback. */
    private static int freeRange(int count) throws IOException {
        InetAddress lo = InetAddress.getLoopbackAddress();
        for (int attempt = 0; attempt < 50; attempt++) {
            int first;
            try (ServerSocket s = new ServerSocket(0, 1, lo)) {
                first = s.getLocalPort();
            }
            boolean free = first + count - 1 <= 65535;
            for (int p = first; p < first + count && free; p++) {
                try (ServerSocket probe = new ServerSocket(p, 1, lo)) {
                    // free
                } catch (IOException busy) {
                    free = false;
                }
            }
            if (free) {
                return first;
            }
        }
        throw new IOException("no " + count + " consecutive free ports");
    }
}
