package io.expertmesh.kvcache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The attack an outside test found: an anonymous Hazelcast client rewrites blocks with recomputed checksums. Stores with
 * the tier's secret sign what they publish and treat such blocks as misses, counted.
 */
class ForgedBlockTest {
    @TempDir
    Path tmp;

    private TestCluster cluster;

    @AfterEach
    void shutDown() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void getPrefix_blocksRewrittenByAnAnonymousClientWithValidChecksums_missesCountedUnauthenticated()
            throws Exception {
        KvSecret secret = BlockAuthenticatorTest.secret(tmp, "secret", KvSecret.randomText());
        KvSecret otherSecret = BlockAuthenticatorTest.secret(tmp, "other", KvSecret.randomText());
        cluster = new TestCluster(2);
        HazelcastKvBlockStore a = cluster.startStore(cluster.member(0).secret(secret).build());
        HazelcastKvBlockStore b = cluster.startStore(cluster.member(1).secret(secret).build());
        List<KvBlock> blocks = TestBlocks.tinyChain(21, 4);
        blocks.forEach(a::publish);
        TestCluster.awaitPublished(a, 4);
        assertEquals(blocks, b.getPrefix(TestBlocks.keys(blocks), TestBlocks.tokens(blocks)), "signed blocks hit");
        assertNotNull(a.map().get(blocks.get(0).key()).mac(), "stored signed");

        // The forger: a plain client of the cluster (no secret), rewriting block 1 with other floats and a
        // recomputed checksum (no MAC), and block 2 signed under a secret of its own.
        ClientConfig anonymous = HazelcastConfigs.client(KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT)
                .clusterName(cluster.clusterName).members(cluster.memberList()).build());
        anonymous.getConnectionStrategyConfig().setAsyncStart(false); // connected when it returns
        HazelcastInstance forger = cluster.track(HazelcastClient.newHazelcastClient(anonymous));
        IMap<BlockKey, KvBlock> map = forger.getMap(a.map().getName());
        KvBlock victim = blocks.get(1);
        float[] data = victim.data().clone();
        data[7] = 42f;
        KvBlock forged = KvBlock.of(victim.key(), victim.tokenIds(), victim.numLayers(), victim.rowWidth(),
                victim.blockSize(), data);
        assertTrue(forged.verify(), "the forged block passes its checksum");
        map.set(victim.key(), forged);
        KvBlock later = blocks.get(2);
        map.set(later.key(), new BlockAuthenticator(otherSecret).signed(later));

        List<KvBlock> got = b.getPrefix(TestBlocks.keys(blocks), TestBlocks.tokens(blocks));

        assertEquals(blocks.subList(0, 1), got, "the walk stops at the forged block");
        assertEquals(1, b.stats().unauthenticatedBlocks());
        assertEquals(0, b.stats().corruptBlocks(), "not counted as corruption: the checksum is fine");
        assertEquals(List.of(), b.getPrefix(List.of(later.key())), "signed with another secret: a miss too");
        assertEquals(2, b.stats().unauthenticatedBlocks());
        assertNull(map.get(victim.key()).mac());
    }

    @Test
    void getPrefix_storeWithoutSecret_readsSignedBlocks_storeWithSecret_refusesUnsignedOnes() throws Exception {
        KvSecret secret = BlockAuthenticatorTest.secret(tmp, "secret", KvSecret.randomText());
        cluster = new TestCluster(2);
        HazelcastKvBlockStore signer = cluster.startStore(cluster.member(0).secret(secret).build());
        HazelcastKvBlockStore plain = cluster.startStore(cluster.member(1).build());
        KvBlock signedOne = TestBlocks.tiny(31);
        KvBlock unsignedOne = TestBlocks.tiny(32);

        signer.publish(signedOne);
        plain.publish(unsignedOne);
        TestCluster.awaitPublished(signer, 1);
        TestCluster.awaitPublished(plain, 1);

        assertEquals(List.of(signedOne), plain.getPrefix(List.of(signedOne.key())));
        assertEquals(List.of(), signer.getPrefix(List.of(unsignedOne.key())));
        assertEquals(1, signer.stats().unauthenticatedBlocks());
    }
}
