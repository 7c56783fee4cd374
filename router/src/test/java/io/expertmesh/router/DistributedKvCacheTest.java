package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import io.expertmesh.kvcache.BlockKey;
import io.expertmesh.kvcache.HazelcastConfigs;
import io.expertmesh.kvcache.KvBlock;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvSecret;
import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.kvcache.KvStores;
import io.expertmesh.proto.inference.v1.DistributedKvStatus;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.router.engine.EngineConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Routers sharing a distributed KV tier (real Hazelcast members embedded in the routers, on loopback): a prefix
 * computed by one router is served from the store by another, and by a router started after it stopped; a
 * corrupted block in the store is recomputed, and so is a block forged by an anonymous Hazelcast client when the
 * routers sign blocks. Output always equals the cold run's, logprobs included.
 */
class DistributedKvCacheTest {
    private static final int PREFIX = 1024;
    private static final EngineConfig ENGINE = new EngineConfig(16, 64L << 20, 1024, 8, 8, true);

    @TempDir
    Path tmp;

    private final String cluster = "router-kv-test-" + UUID.randomUUID();

    private KvStoreConfig member(int port, List<Integer> ports) {
        return KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).clusterName(cluster)
                .members(ports.stream().map(p -> "127.0.0.1:" + p).toList()).memberPort(port).partitionCount(23)
                .maxEntriesPerMember(10_000).publishQueueCapacity(512).lookupTimeoutMillis(5_000).build();
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

    private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    /** Waits until everything {@code r} queued for publishing is stored. */
    private static void awaitPublished(TestRouter r, long atLeast) throws InterruptedException {
        awaitTrue(() -> {
            DistributedKvStatus s = kvStatus(r);
            return s.getPublished() >= atLeast && s.getPublished() + s.getPublishErrors() >= s.getPublishes();
        }, atLeast + " blocks published");
    }

    private static double ttft(TestRouter.Result r) {
        return r.finished().getUsage().getTimeToFirstTokenMs();
    }

    @Test
    void generate_prefixComputedOnRouterA_servedFromStoreOnRouterBAndOnARestartedRouter() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        int pa = freePort();
        int pb = freePort();
        int pc = freePort();
        List<Integer> ports = List.of(pa, pb, pc);
        GenerateRequest request = PrefixCacheTest.request(randomPrefix(5), 11, 12, 13);
        TestRouter.Result cold;
        try (TestRouter a = TestRouter.withKvStore(model, ENGINE, member(pa, ports));
             TestRouter b = TestRouter.withKvStore(model, ENGINE, member(pb, ports))) {
            a.server.awaitLoaded();
            b.server.awaitLoaded();
            // Warm up the JIT and the store's code paths on unrelated prompts (their blocks go to the store too).
            a.generate(PrefixCacheTest.request(randomPrefix(100), 1));
            b.generate(PrefixCacheTest.request(randomPrefix(101), 1));
            b.generate(PrefixCacheTest.request(randomPrefix(100), 2));

            cold = a.generate(request);
            assertEquals(0, cold.finished().getUsage().getCachedPromptTokens(), "a cold run on A");
            awaitPublished(a, 2 * PREFIX / 16);   // the warm-up prompt and this one

            TestRouter.Result fromStore = b.generate(request);
            int cached = fromStore.finished().getUsage().getCachedPromptTokens();
            assertTrue(cached >= 960, "cached prompt tokens on B " + cached);
            assertEquals(cold.tokens(), fromStore.tokens(), "output identical to the cold run, logprobs included");
            // Informational only: on a loaded 2-core machine the store's TTFT can exceed the cold one.
            System.out.printf("distributed KV: TTFT cold on A %.1f ms, from the store on B %.1f ms (%d tokens)%n",
                    ttft(cold), ttft(fromStore), cached);
            DistributedKvStatus kb = kvStatus(b);
            assertTrue(kb.getHitTokens() >= 960 && kb.getAdoptedBlocks() >= 60 && kb.getBytesIn() > 0, kb.toString());
            long bytesIn = kb.getBytesIn();
            TestRouter.Result again = b.generate(request);
            assertEquals(cold.tokens(), again.tokens());
            DistributedKvStatus kb2 = kvStatus(b);
            assertEquals(bytesIn, kb2.getBytesIn(), "a prefix held locally is not fetched again");
            assertEquals(kb.getLookupsSkippedLocal() + 1, kb2.getLookupsSkippedLocal(), kb2.toString());

            // Router A goes away; B (and its member) stay. A router started afresh is served from the store.
            a.close();
            try (TestRouter c = TestRouter.withKvStore(model, ENGINE, member(pc, ports))) {
                c.server.awaitLoaded();
                TestRouter.Result restarted = c.generate(request);
                int cachedC = restarted.finished().getUsage().getCachedPromptTokens();
                assertTrue(cachedC >= 960, "cached prompt tokens on the restarted router " + cachedC);
                assertEquals(cold.tokens(), restarted.tokens(), "output identical to the cold run");
            }
        }
    }

    @Test
    void generate_corruptedBlockInStore_recomputedFromThereWithIdenticalOutput() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        int pNode = freePort();
        int pa = freePort();
        int pb = freePort();
        List<Integer> ports = List.of(pNode, pa, pb);
        GenerateRequest request = PrefixCacheTest.request(randomPrefix(7), 31, 32);
        // A standalone cache node (as `cache-node` runs it) that outlives the routers; its store is our way in.
        try (KvBlockStore node = KvStores.create(member(pNode, ports))) {
            TestRouter.Result cold;
            List<BlockKey> keys;
            try (TestRouter a = TestRouter.withKvStore(model, ENGINE, member(pa, ports))) {
                a.server.awaitLoaded();
                cold = a.generate(request);
                assertEquals(0, cold.finished().getUsage().getCachedPromptTokens());
                awaitPublished(a, PREFIX / 16);
                keys = a.server.engine().blockKeys(request.getTokenIds().getIdsList().stream()
                        .mapToInt(Integer::intValue).toArray());
            }
            List<KvBlock> stored = node.getPrefix(keys);
            assertEquals(keys.size(), stored.size(), "the whole prefix is in the store after router A left");
            KvBlock good = stored.get(10);
            float[] data = good.data().clone();
            data[data.length / 2] += 1f;    // flipped contents, old checksum
            assertTrue(node.publish(new KvBlock(good.key(), good.tokenIds(), good.numLayers(), good.rowWidth(),
                    good.blockSize(), data, good.checksum())));
            awaitTrue(() -> node.stats().published() >= 1, "the corrupted block stored");

            try (TestRouter b = TestRouter.withKvStore(model, ENGINE, member(pb, ports))) {
                b.server.awaitLoaded();
                TestRouter.Result r = b.generate(request);
                assertEquals(10 * 16, r.finished().getUsage().getCachedPromptTokens(),
                        "blocks before the corrupted one come from the store, the rest is recomputed");
                assertEquals(cold.tokens(), r.tokens(), "output identical to the cold run, logprobs included");
                assertTrue(kvStatus(b).getCorruptBlocks() >= 1, kvStatus(b).toString());
            }
        }
    }

    @Test
    void generate_blockForgedByAnonymousClientWithValidChecksum_missCountedAndOutputEqualsColdRun() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        Path secretFile = tmp.resolve("kv-secret");
        Files.writeString(secretFile, KvSecret.randomText());
        KvSecret secret = KvSecret.read(secretFile);
        int pa = freePort();
        int pb = freePort();
        List<Integer> ports = List.of(pa, pb);
        GenerateRequest request = PrefixCacheTest.request(randomPrefix(9), 41, 42);
        try (TestRouter a = TestRouter.withKvStore(model, ENGINE, member(pa, ports).toBuilder().secret(secret)
                .build())) {
            a.server.awaitLoaded();
            TestRouter.Result cold = a.generate(request);
            assertEquals(0, cold.finished().getUsage().getCachedPromptTokens());
            awaitPublished(a, PREFIX / 16);
            List<BlockKey> keys = a.server.engine().blockKeys(request.getTokenIds().getIdsList().stream()
                    .mapToInt(Integer::intValue).toArray());

            // The attack an outside test found: a client with no secret rewrites block 10 with other KV and a recomputed
            // checksum (keeping the old MAC). Without the MAC check, router B would adopt it and produce other
            // tokens with no error.
            ClientConfig anonymous = HazelcastConfigs.client(KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT)
                    .clusterName(cluster).members(ports.stream().map(p -> "127.0.0.1:" + p).toList()).build());
            anonymous.getConnectionStrategyConfig().setAsyncStart(false);
            HazelcastInstance forger = HazelcastClient.newHazelcastClient(anonymous);
            try {
                IMap<BlockKey, KvBlock> map = forger.getMap(member(pa, ports).mapName());
                KvBlock good = map.get(keys.get(10));
                float[] data = good.data().clone();
                for (int i = 0; i < data.length; i++) {
                    data[i] = -data[i];
                }
                // Valid CRC, wrong MAC: the genuine block's MAC replayed on other contents.
                KvBlock forged = KvBlock.of(good.key(), good.tokenIds(), good.numLayers(), good.rowWidth(),
                        good.blockSize(), data).withMac(good.mac());
                assertTrue(forged.verify(), "the forgery passes the checksum");
                assertTrue(good.mac() != null, "router A signed what it published");
                map.set(forged.key(), forged);
            } finally {
                forger.shutdown();
            }

            try (TestRouter b = TestRouter.withKvStore(model, ENGINE, member(pb, ports).toBuilder().secret(secret)
                    .build())) {
                b.server.awaitLoaded();
                TestRouter.Result r = b.generate(request);

                assertEquals(10 * 16, r.finished().getUsage().getCachedPromptTokens(),
                        "blocks before the forged one come from the store, the rest is recomputed");
                assertEquals(cold.tokens(), r.tokens(), "output identical to the cold run, logprobs included");
                DistributedKvStatus kb = kvStatus(b);
                assertEquals(1, kb.getUnauthenticatedBlocks(), kb.toString());
                assertEquals(0, kb.getCorruptBlocks(), kb.toString());
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
