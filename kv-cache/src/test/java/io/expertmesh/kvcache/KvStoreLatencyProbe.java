package io.expertmesh.kvcache;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Put/get latency of real block sizes between two embedded members on loopback (not a unit test: run with
 * {@code -Dkv.probe=true -Dtest=KvStoreLatencyProbe}). Numbers come from the stores' own stats.
 */
@EnabledIfSystemProperty(named = "kv.probe", matches = "true")
class KvStoreLatencyProbe {
    private static final Logger log = LoggerFactory.getLogger(KvStoreLatencyProbe.class);
    private TestCluster cluster;
    private KvBlockStore client;

    @AfterEach
    void shutDownMembers() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void measure_tinyAndDeepSeekV3Blocks_logsLatencies() {
        cluster = new TestCluster(2);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).maxHeapMbPerMember(2048)
                .publishQueueCapacity(64).lookupTimeoutMillis(5000).build());
        HazelcastKvBlockStore b = cluster.startStore(cluster.member(1).maxHeapMbPerMember(2048)
                .lookupTimeoutMillis(5000).build());
        TestCluster.awaitTrue(Duration.ofSeconds(10), () -> b.instance().getCluster().getMembers().size() == 2,
                "two members");
        client = cluster.track(KvStores.create(KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT)
                .clusterName(cluster.clusterName).members(cluster.memberList()).lookupTimeoutMillis(5000).build()));
        for (int round = 0; round < 2; round++) {
            String tag = round == 0 ? "warm-up " : "";
            probe(tag + "tiny (4 × 16 × 144, 36 KB)", a, b, 4, 144, 1000, round);
            probe(tag + "DeepSeek-V3 (61 × 16 × 576, 2.2 MB)", a, b, 61, 576, 60, round);
        }
    }

    private void probe(String what, HazelcastKvBlockStore a, HazelcastKvBlockStore b, int layers, int row, int n,
                       int round) {
        List<KvBlock> blocks = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            blocks.add(TestBlocks.random(layers * 1_000_000L + round * 100_000L + i, layers, row,
                    TestBlocks.BLOCK_SIZE));
        }
        // Warm up: a few round trips first so JIT and connections settle, then measure on fresh stats.
        for (KvBlock x : blocks.subList(0, 5)) {
            a.map().set(x.key(), x);
            b.map().get(x.key());
        }
        KvStoreStats a0 = a.stats();
        KvStoreStats b0 = b.stats();
        long t0 = System.nanoTime();
        for (KvBlock x : blocks) {
            while (!a.publish(x)) {
                Thread.onSpinWait();
            }
        }
        TestCluster.awaitPublished(a, a0.published() + n);
        double putWallMs = (System.nanoTime() - t0) / 1e6;
        long v0 = System.nanoTime();
        long verified = 0;
        for (KvBlock x : blocks) {
            verified += x.verify() ? 1 : 0;
        }
        double verifyUs = (System.nanoTime() - v0) / 1e3 / n;
        long g0 = System.nanoTime();
        int hits = 0;
        for (int i = 0; i + 4 <= n; i += 4) {
            hits += b.getPrefix(TestBlocks.keys(blocks.subList(i, i + 4))).size();
        }
        double getWallUs = (System.nanoTime() - g0) / 1e3 / (n / 4);
        long s0 = System.nanoTime();
        for (KvBlock x : blocks) {
            hits += b.getPrefix(List.of(x.key())).size();
        }
        double singleUs = (System.nanoTime() - s0) / 1e3 / n;
        long c0 = System.nanoTime();
        for (KvBlock x : blocks) {
            hits += client.getPrefix(List.of(x.key())).size();
        }
        double clientUs = (System.nanoTime() - c0) / 1e3 / n;
        KvStoreStats a1 = a.stats();
        KvStoreStats b1 = b.stats();
        log.info("{}: put mean {} µs (max {} µs, {} blocks, {} ms wall); get-through-other-member mean {} µs "
                        + "per block (max {} µs); getPrefix of 4 blocks {} µs wall incl. verify; getPrefix of 1 block {} µs; "
                        + "client getPrefix of 1 block {} µs; verify alone {} µs; hits {}/{}, verified {}",
                what, Math.round(mean(a0.putMeanMicros(), a0.published(), a1.putMeanMicros(), a1.published())),
                a1.putMaxMicros(), n, Math.round(putWallMs),
                Math.round(mean(b0.getMeanMicros(), b0.hitBlocks(), b1.getMeanMicros(), b1.hitBlocks())),
                b1.getMaxMicros(), Math.round(getWallUs), Math.round(singleUs), Math.round(clientUs), Math.round(verifyUs),
                hits, n / 4 * 4 + 2 * n, verified);
    }

    /** Mean over the interval between two snapshots of a running mean. */
    private static double mean(double mean0, long n0, double mean1, long n1) {
        return n1 == n0 ? 0 : (mean1 * n1 - mean0 * n0) / (n1 - n0);
    }
}
