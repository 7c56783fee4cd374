package io.expertmesh.kvcache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.config.Config;
import com.hazelcast.config.MapConfig;
import com.hazelcast.config.MaxSizePolicy;
import java.util.List;
import org.junit.jupiter.api.Test;

class KvStoreConfigTest {

    @Test
    void builder_defaults_areDocumentedValues() {
        KvStoreConfig c = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).build();
        assertEquals("expertmesh-kv", c.clusterName());
        assertEquals("expertmesh-kv-default", c.mapName());
        assertEquals(5801, c.memberPort());
        assertEquals(1, c.backupCount());
        assertEquals(1024, c.maxHeapMbPerMember());
        assertEquals(0, c.maxEntriesPerMember());
        assertFalse(c.nearCache());
        assertEquals(32, c.publishQueueCapacity());
        assertEquals(500, c.lookupTimeoutMillis());
    }

    @Test
    void parseMembers_commaList_splitsAndTrims() {
        assertEquals(List.of("10.0.0.1:5801", "node-b:5802"), KvStoreConfig.parseMembers(" 10.0.0.1:5801, node-b:5802,"));
    }

    @Test
    void parseMembers_portRange_throws() {
        assertThrows(IllegalArgumentException.class, () -> KvStoreConfig.parseMembers("127.0.0.1:5801-5806"));
    }

    @Test
    void build_clientWithoutMembers_throws() {
        assertThrows(IllegalArgumentException.class, () -> KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT).build());
    }

    @Test
    void build_bothBounds_throws() {
        KvStoreConfig c = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).build();
        assertThrows(IllegalArgumentException.class, () -> new KvStoreConfig(c.mode(), c.clusterName(),
                c.namespace(), c.members(), c.memberHost(), c.memberPort(), 1, c.backupCount(), 10, 10, false, 1, 1,
                1, 1, 1, 1, null, false));
    }

    @Test
    void build_backupCountOverSix_throws() {
        assertThrows(IllegalArgumentException.class,
                () -> KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).backupCount(7).build());
    }

    @Test
    void member_defaults_loopbackSafeAndHeapBoundedLru() {
        Config hc = HazelcastConfigs.member(KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).build(), false);
        assertFalse(hc.getNetworkConfig().getJoin().getMulticastConfig().isEnabled());
        assertFalse(hc.getNetworkConfig().getJoin().getAutoDetectionConfig().isEnabled());
        assertTrue(hc.getNetworkConfig().getJoin().getTcpIpConfig().isEnabled());
        assertEquals(List.of("127.0.0.1:5801"), hc.getNetworkConfig().getJoin().getTcpIpConfig().getMembers());
        assertEquals("false", hc.getProperty("hazelcast.phone.home.enabled"));
        assertEquals("false", hc.getProperty("hazelcast.socket.bind.any"), "listens on 127.0.0.1 only");
        assertFalse(hc.getNetworkConfig().isPortAutoIncrement(), "one port unless a range is asked for");
        MapConfig m = hc.getMapConfig("expertmesh-kv-anything");
        assertEquals(MaxSizePolicy.USED_HEAP_SIZE, m.getEvictionConfig().getMaxSizePolicy());
        assertEquals(1024, m.getEvictionConfig().getSize());
        assertEquals(1, m.getBackupCount());
    }

    @Test
    void create_noneMode_isNoop() {
        try (KvBlockStore s = KvStores.create(KvStoreConfig.builder(KvStoreConfig.Mode.NONE).build())) {
            assertInstanceOf(NoopKvBlockStore.class, s);
            assertTrue(s.publish(TestBlocks.tiny(1)));
            assertTrue(s.getPrefix(List.of(TestBlocks.tiny(1).key())).isEmpty());
            assertEquals(1, s.stats().lookups());
        }
    }
}
