package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.HazelcastInstance;
import io.expertmesh.kvcache.KvCacheNode;
import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.proto.inference.v1.DistributedKvStatus;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.router.engine.EngineConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A router that is a client of three cache nodes (backup count 1) keeps serving while one node is killed: every
 * request succeeds and every output equals the cold reference output of that request, logprobs included.
 */
class KvStoreMemberLossTest {
    private static final int PREFIX = 512;
    private static final int REQUESTS = 12;
    private static final int KILL_AFTER = 4;
    private static final EngineConfig ENGINE = new EngineConfig(16, 64L << 20, 1024, 8, 8, true);

    @TempDir
    Path tmp;

    private final String cluster = "router-kv-loss-" + UUID.randomUUID();

    private KvStoreConfig node(int port, List<String> members) {
        return KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).clusterName(cluster).members(members)
                .memberPort(port).partitionCount(23).backupCount(1).maxEntriesPerMember(10_000).build();
    }

    private KvStoreConfig client(List<String> members) {
        return KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT).clusterName(cluster).members(members)
                .publishQueueCapacity(512).lookupTimeoutMillis(2_000).build();
    }

    private static int[] randomPrefix(long seed) {
        Random rnd = new Random(seed);
        int[] prefix = new int[PREFIX];
        prefix[0] = 0;
        for (int i = 1; i < prefix.length; i++) {
            prefix[i] = 2 + rnd.nextInt(120000);
        }
        return prefix;
    }

    private static DistributedKvStatus kvStatus(TestRouter r) {
        return r.blocking.getStatus(GetStatusRequest.getDefaultInstance()).getKvStore();
    }

    @Test
    void generate_oneOfThreeCacheNodesKilledDuringLookups_noFailedRequestNoWrongOutput() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        List<Integer> ports = List.of(freePort(), freePort(), freePort());
        List<String> members = ports.stream().map(p -> "127.0.0.1:" + p).toList();
        // Each request has a prefix of its own, so each one is a store lookup on the router under test (a shared
        // prefix would be served by its local prefix cache after the first request).
        List<GenerateRequest> requests = new ArrayList<>();
        for (int i = 0; i < REQUESTS; i++) {
            requests.add(PrefixCacheTest.request(randomPrefix(1000 + i), 11, 12, 13));
        }
        List<HazelcastInstance> nodes = new ArrayList<>();
        try {
            for (int p : ports) {
                nodes.add(KvCacheNode.start(node(p, members), false));
            }
            assertEquals(3, nodes.getFirst().getCluster().getMembers().size());

            // The references: cold runs on a router that publishes them to the cache nodes.
            List<TestRouter.Result> reference = new ArrayList<>();
            try (TestRouter publisher = TestRouter.withKvStore(model, ENGINE, client(members))) {
                publisher.server.awaitLoaded();
                for (GenerateRequest r : requests) {
                    TestRouter.Result cold = publisher.generate(r);
                    assertEquals(0, cold.finished().getUsage().getCachedPromptTokens(), "a cold run");
                    reference.add(cold);
                }
                long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                DistributedKvStatus s;
                while ((s = kvStatus(publisher)).getPublished() < (long) REQUESTS * PREFIX / 16) {
                    assertTrue(System.nanoTime() < end, "timed out publishing: " + s);
                    Thread.sleep(20);
                }
            }

            try (TestRouter router = TestRouter.withKvStore(model, ENGINE, client(members))) {
                router.server.awaitLoaded();
                AtomicInteger done = new AtomicInteger();
                ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
                List<TestRouter.Result> results = new ArrayList<>();
                Thread sender = Thread.ofPlatform().name("sender").start(() -> {
                    for (GenerateRequest r : requests) {
                        try {
                            results.add(router.generate(r));
                        } catch (Throwable t) {
                            failures.add(t);
                            results.add(null);
                        }
                        done.incrementAndGet();
                    }
                });
                while (done.get() < KILL_AFTER) {
                    Thread.sleep(1);
                }
                // Killed (not shut down gracefully) while the next lookup is running.
                nodes.get(1).getLifecycleService().terminate();
                int killedAt = done.get();
                sender.join(Duration.ofSeconds(60));
                assertTrue(!sender.isAlive(), "requests finished");
                assertTrue(failures.isEmpty(), "failed requests: " + failures);

                int fromStoreAfterKill = 0;
                for (int i = 0; i < REQUESTS; i++) {
                    TestRouter.Result r = results.get(i);
                    assertNotNull(r.finished(), "request " + i + " finished");
                    assertEquals(reference.get(i).tokens(), r.tokens(),
                            "request " + i + ": output identical to the cold run, logprobs included");
                    int cached = r.finished().getUsage().getCachedPromptTokens();
                    if (i < killedAt) {
                        assertEquals(PREFIX, cached, "request " + i + " before the kill served from the store");
                    } else if (cached == PREFIX) {
                        fromStoreAfterKill++;
                    }
                }
                DistributedKvStatus s = kvStatus(router);
                System.out.printf("cache node killed after %d of %d requests: %d of the %d after it served wholly "
                        + "from the store; lookups %d, hits %d, lookup errors %d, corrupt %d%n", killedAt, REQUESTS,
                        fromStoreAfterKill, REQUESTS - killedAt, s.getLookups(), s.getHits(), s.getLookupErrors(),
                        s.getCorruptBlocks());
                assertEquals(0, s.getCorruptBlocks() + s.getMismatchedBlocks(), s.toString());
                // Backup count 1: once the two survivors have taken over, nothing was lost.
                assertEquals(PREFIX, results.getLast().finished().getUsage().getCachedPromptTokens(),
                        "the last request, after the take-over, wholly from the store: " + s);
            }
        } finally {
            for (HazelcastInstance n : nodes) {
                n.getLifecycleService().terminate();
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
