package io.expertmesh.kvcache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.internal.serialization.Data;
import com.hazelcast.spi.impl.SerializationServiceSupport;
import java.io.Serializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The Hazelcast tier on real members over loopback TCP, each test on its own cluster name and ports. */
class HazelcastKvBlockStoreTest {
    private TestCluster cluster;

    @AfterEach
    void shutDownMembers() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void getPrefix_blockPublishedThroughMemberA_readThroughMemberBAsCompact() {
        cluster = new TestCluster(2);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).build());
        HazelcastKvBlockStore b = cluster.startStore(cluster.member(1).build());
        TestCluster.awaitTrue(Duration.ofSeconds(10), () -> b.instance().getCluster().getMembers().size() == 2,
                "two members");
        List<KvBlock> blocks = TestBlocks.tinyChain(1, 3);

        blocks.forEach(a::publish);
        TestCluster.awaitPublished(a, 3);
        List<KvBlock> got = b.getPrefix(TestBlocks.keys(blocks), TestBlocks.tokens(blocks));

        assertEquals(blocks, got);
        assertFalse(Serializable.class.isAssignableFrom(KvBlock.class));
        assertFalse(Serializable.class.isAssignableFrom(BlockKey.class));
        Data value = ((SerializationServiceSupport) b.instance()).getSerializationService().toData(blocks.get(0));
        Data key = ((SerializationServiceSupport) b.instance()).getSerializationService().toData(blocks.get(0).key());
        assertTrue(value.isCompact(), "KvBlock is stored as compact");
        assertTrue(key.isCompact(), "BlockKey is stored as compact");
        KvStoreStats sb = b.stats();
        assertEquals(1, sb.hits());
        assertEquals(3, sb.hitBlocks());
        assertEquals(3L * TestBlocks.BLOCK_SIZE, sb.hitTokens());
        assertEquals(3 * blocks.get(0).payloadBytes(), sb.bytesIn());
        assertEquals(3 * blocks.get(0).payloadBytes(), a.stats().bytesOut());
    }

    @Test
    void getPrefix_missingBlockInTheMiddle_stopsAtFirstMiss() {
        cluster = new TestCluster(2);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).lookupBatch(2).build());
        cluster.startStore(cluster.member(1).build());
        List<KvBlock> blocks = TestBlocks.tinyChain(2, 5);
        for (int i = 0; i < 5; i++) {
            if (i != 2) {
                a.map().set(blocks.get(i).key(), blocks.get(i));
            }
        }

        List<KvBlock> got = a.getPrefix(TestBlocks.keys(blocks));

        assertEquals(blocks.subList(0, 2), got);
        assertTrue(a.getPrefix(TestBlocks.keys(blocks.subList(2, 5))).isEmpty());
    }

    @Test
    void getPrefix_entryTamperedInMap_isMissAndCountedCorrupt() {
        cluster = new TestCluster(2);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).build());
        HazelcastKvBlockStore b = cluster.startStore(cluster.member(1).build());
        List<KvBlock> blocks = TestBlocks.tinyChain(3, 3);
        blocks.forEach(x -> a.map().set(x.key(), x));
        KvBlock victim = blocks.get(1);
        float[] tampered = victim.data().clone();
        tampered[17] = -tampered[17];
        a.map().set(victim.key(), new KvBlock(victim.key(), victim.tokenIds(), victim.numLayers(),
                victim.rowWidth(), victim.blockSize(), tampered, victim.checksum()));

        List<KvBlock> got = b.getPrefix(TestBlocks.keys(blocks));

        assertEquals(blocks.subList(0, 1), got);
        assertEquals(1, b.stats().corruptBlocks());
    }

    @Test
    void getPrefix_otherTokensThanExpected_isMiss() {
        cluster = new TestCluster(2);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).build());
        cluster.startStore(cluster.member(1).build());
        List<KvBlock> blocks = TestBlocks.tinyChain(4, 3);
        blocks.forEach(x -> a.map().set(x.key(), x));
        List<int[]> expected = new ArrayList<>(TestBlocks.tokens(blocks));
        int[] other = expected.get(1).clone();
        other[5]++;
        expected.set(1, other);

        List<KvBlock> got = a.getPrefix(TestBlocks.keys(blocks), expected);

        assertEquals(blocks.subList(0, 1), got);
        assertEquals(1, a.stats().mismatchedBlocks());
        assertEquals(0, a.stats().corruptBlocks());
    }

    @Test
    void publish_queueFull_returnsFalseWithoutBlockingAndCountsDrops() {
        cluster = new TestCluster(2);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).publishQueueCapacity(2).build());
        HazelcastKvBlockStore b = cluster.startStore(cluster.member(1).build());
        List<KvBlock> blocks = TestBlocks.tinyChain(5, 100);
        // Hold the publisher: its first block's key is locked by this thread, so its IMap.set waits for the
        // unlock, and the queue (2) fills whatever the machine's speed. Were publish() to block on a full queue,
        // this test would never get to the unlock.
        b.map().lock(blocks.get(0).key());
        int accepted;
        try {
            accepted = 0;
            for (KvBlock x : blocks) {
                accepted += a.publish(x) ? 1 : 0;
            }
            KvStoreStats s = a.stats();
            assertEquals(100, s.publishes() + s.publishDrops());
            assertEquals(accepted, s.publishes());
            // The first block is always accepted (the queue is empty); the publisher takes at most that one out
            // before it waits, so at most 2 more fit.
            assertTrue(accepted >= 2 && accepted <= 3, "accepted " + accepted + ": " + s);
            assertEquals(0, s.published(), "nothing stored while the first block's key is locked");
        } finally {
            b.map().unlock(blocks.get(0).key());
        }

        TestCluster.awaitPublished(a, accepted);
        assertEquals(accepted, a.stats().published());
        assertEquals(0, a.stats().publishErrors());
        assertEquals(blocks.subList(0, 1), a.getPrefix(List.of(blocks.get(0).key())));
    }

    @Test
    void publish_manyBlocksOverTinyPerMemberBound_mapStaysBoundedAndOldEntriesGone() {
        cluster = new TestCluster(2);
        int bound = 20;
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).partitionCount(7)
                .maxEntriesPerMember(bound).publishQueueCapacity(1000).build());
        cluster.startStore(cluster.member(1).partitionCount(7).maxEntriesPerMember(bound).build());
        List<KvBlock> blocks = TestBlocks.tinyChain(6, 400);

        blocks.forEach(a::publish);
        TestCluster.awaitPublished(a, 400);

        int size = a.size();
        assertTrue(size <= 2 * bound, "map holds " + size + " entries, bound " + bound + " per member × 2");
        assertTrue(size > 0);
        long oldPresent = blocks.subList(0, 100).stream().filter(x -> a.map().containsKey(x.key())).count();
        assertTrue(oldPresent <= 2 * bound - 0, "old entries still present: " + oldPresent);
        assertEquals(400, a.stats().published());
    }

    @Test
    void getPrefix_oneOfThreeMembersKilledDuringLookups_noExceptionAndHitsContinue() throws Exception {
        cluster = new TestCluster(3);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).lookupTimeoutMillis(300).build());
        HazelcastKvBlockStore b = cluster.startStore(cluster.member(1).build());
        HazelcastKvBlockStore c = cluster.startStore(cluster.member(2).build());
        TestCluster.awaitTrue(Duration.ofSeconds(10), () -> a.instance().getCluster().getMembers().size() == 3,
                "three members");
        List<KvBlock> blocks = TestBlocks.tinyChain(7, 30);
        blocks.forEach(x -> b.map().set(x.key(), x));
        List<BlockKey> keys = TestBlocks.keys(blocks);
        List<int[]> tokens = TestBlocks.tokens(blocks);

        AtomicBoolean killed = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger fullHitsAfterKill = new AtomicInteger();
        AtomicInteger lookupsAfterKill = new AtomicInteger();
        ConcurrentLinkedQueue<Throwable> thrown = new ConcurrentLinkedQueue<>();
        Thread reader = Thread.ofPlatform().name("reader").start(() -> {
            while (!stop.get()) {
                try {
                    boolean after = killed.get();
                    int n = a.getPrefix(keys, tokens).size();
                    if (after) {
                        lookupsAfterKill.incrementAndGet();
                        if (n == keys.size()) {
                            fullHitsAfterKill.incrementAndGet();
                        }
                    }
                } catch (Throwable t) {
                    thrown.add(t);
                }
            }
        });
        Thread.sleep(300);
        c.instance().getLifecycleService().terminate();
        killed.set(true);
        TestCluster.awaitTrue(Duration.ofSeconds(20), () -> fullHitsAfterKill.get() >= 20 || !thrown.isEmpty(),
                "full hits after the kill");
        stop.set(true);
        reader.join(5000);

        assertTrue(thrown.isEmpty(), "exceptions reached the caller: " + thrown);
        assertTrue(fullHitsAfterKill.get() >= 20);
        assertEquals(2, a.instance().getCluster().getMembers().size());
        assertEquals(keys.size(), a.getPrefix(keys, tokens).size(), "backup count 1: nothing lost");
    }

    @Test
    void getPrefix_clientOfTwoCacheNodes_roundTripsAndSeesMembersBlocks() {
        cluster = new TestCluster(2);
        KvStoreConfig node0 = cluster.member(0).build();
        HazelcastInstance n0 = cluster.track(KvCacheNode.start(node0, false));
        cluster.track(KvCacheNode.start(cluster.member(1).build(), false));
        KvBlockStore onMember = cluster.track(new HazelcastKvBlockStore(n0, node0, false));
        KvBlockStore client = cluster.track(KvStores.create(KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT)
                .clusterName(cluster.clusterName).members(cluster.memberList()).nearCache(true).build()));
        List<KvBlock> blocks = TestBlocks.tinyChain(8, 4);

        blocks.subList(0, 2).forEach(client::publish);
        blocks.subList(2, 4).forEach(onMember::publish);
        TestCluster.awaitPublished(client, 2);
        TestCluster.awaitPublished(onMember, 2);

        assertEquals(blocks, client.getPrefix(TestBlocks.keys(blocks), TestBlocks.tokens(blocks)));
        assertEquals(blocks, client.getPrefix(TestBlocks.keys(blocks)), "again, from the near cache");
        assertEquals(blocks, onMember.getPrefix(TestBlocks.keys(blocks)));
        assertEquals(2, client.stats().hits());
    }

    @Test
    @Timeout(120)
    void getPrefix_clientAfterClusterGone_missesWithoutThrowingOrWaiting() {
        cluster = new TestCluster(1);
        KvStoreConfig node0 = cluster.member(0).build();
        HazelcastInstance n0 = cluster.track(KvCacheNode.start(node0, false));
        // A lookup deadline longer than the test's timeout: a lookup that returns proves the offline client
        // failed it at once rather than waiting for the deadline (or for a reconnect that never comes).
        KvBlockStore client = cluster.track(KvStores.create(KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT)
                .clusterName(cluster.clusterName).members(cluster.memberList()).lookupTimeoutMillis(3_600_000)
                .build()));
        KvBlock block = TestBlocks.tiny(9);
        client.publish(block);
        TestCluster.awaitPublished(client, 1);
        assertEquals(1, client.getPrefix(List.of(block.key())).size());

        n0.getLifecycleService().terminate();
        TestCluster.awaitTrue(Duration.ofSeconds(10), () -> client.getPrefix(List.of(block.key())).isEmpty(),
                "lookups to miss");
        long errorsBefore = client.stats().lookupErrors();
        List<KvBlock> got = client.getPrefix(List.of(block.key()));
        boolean accepted = client.publish(TestBlocks.tiny(10));

        assertTrue(got.isEmpty());
        assertEquals(errorsBefore + 1, client.stats().lookupErrors(), "the lookup failed (offline), counted");
        assertTrue(accepted, "publishing still queues");
    }

    @Test
    void getPrefix_clientStartedBeforeAnyMember_missesThenHitsOnceConnected() {
        cluster = new TestCluster(1);
        KvBlockStore client = cluster.track(KvStores.create(KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT)
                .clusterName(cluster.clusterName).members(cluster.memberList()).connectTimeoutMillis(200).build()));
        KvBlock block = TestBlocks.tiny(11);
        assertTrue(client.getPrefix(List.of(block.key())).isEmpty());

        KvStoreConfig node0 = cluster.member(0).build();
        HazelcastInstance n0 = cluster.track(KvCacheNode.start(node0, false));
        n0.<BlockKey, KvBlock>getMap(node0.mapName()).set(block.key(), block);

        TestCluster.awaitTrue(Duration.ofSeconds(15), () -> client.getPrefix(List.of(block.key())).size() == 1,
                "the client to connect and hit");
    }
}
