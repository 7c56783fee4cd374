package io.expertmesh.kvcache;

import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.client.config.ClientConnectionStrategyConfig;
import com.hazelcast.config.Config;
import com.hazelcast.config.EvictionConfig;
import com.hazelcast.config.EvictionPolicy;
import com.hazelcast.config.InMemoryFormat;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.MapConfig;
import com.hazelcast.config.MaxSizePolicy;
import com.hazelcast.config.NearCacheConfig;
import com.hazelcast.config.NetworkConfig;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;

/**
 * Hazelcast configuration of the tier, built in code from a {@link KvStoreConfig} so that embedded members,
 * cache nodes and clients cannot drift apart.
 *
 * <p>Loopback-safe by default: multicast and auto-detection off, tcp-ip join with members listed one by one,
 * no phone-home, logging through SLF4J. A member listens on its configured address only: Hazelcast's default
 * binds every interface ({@code *:port}), which put a {@code --host 127.0.0.1} tier on the network.
 *
 * <p>A JVM that runs a member or client should be started with the module flags from Hazelcast's documentation,
 * or Hazelcast logs a warning and falls back to slower paths:
 * <pre>
 * --add-modules java.se --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
 * --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED
 * --add-opens java.management/sun.management=ALL-UNNAMED
 * --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
 * </pre>
 */
public final class HazelcastConfigs {
    /** Every namespace's map gets the same configuration. */
    static final String MAP_PATTERN = "expertmesh-kv-*";

    private HazelcastConfigs() {
    }

    /**
     * A member's configuration.
     *
     * @param gracefulShutdownHook true for a standalone cache node: on SIGTERM hand its partitions to the others
     *                             before leaving; false inside a router, whose own shutdown closes the store
     */
    public static Config member(KvStoreConfig cfg, boolean gracefulShutdownHook) {
        Config c = new Config();
        c.setClusterName(cfg.clusterName());
        commonProperties(c.getProperties());
        c.setProperty("hazelcast.partition.count", Integer.toString(cfg.partitionCount()));
        c.setProperty("hazelcast.shutdownhook.enabled", Boolean.toString(gracefulShutdownHook));
        c.setProperty("hazelcast.shutdownhook.policy", "GRACEFUL");
        c.setProperty("hazelcast.health.monitoring.level", "OFF");
        // Bind and advertise the configured host only. bind.any=false makes the member listen on the picked
        // address instead of the wildcard; localAddress and the single interface make that address the host's.
        String address = bindAddress(cfg.memberHost());
        c.setProperty("hazelcast.local.localAddress", address);
        c.setProperty("hazelcast.socket.bind.any", "false");

        NetworkConfig net = c.getNetworkConfig();
        net.getInterfaces().setEnabled(true).setInterfaces(List.of(address));
        // The first free port of [port, port + count) at bind time: Hazelcast tries them in order, so members
        // started at once on one host each get their own port instead of racing for a probed one.
        net.setPort(cfg.memberPort()).setPortCount(cfg.memberPortCount())
                .setPortAutoIncrement(cfg.memberPortCount() > 1);
        JoinConfig join = net.getJoin();
        join.getMulticastConfig().setEnabled(false);
        join.getAutoDetectionConfig().setEnabled(false);
        List<String> members = new ArrayList<>(cfg.members());
        if (members.isEmpty()) {
            members.add(cfg.memberHost() + ":" + cfg.memberPort());
        }
        // One entry per member: tcp-ip ranges ("host:5801-5806") fail with NumberFormatException.
        join.getTcpIpConfig().setEnabled(true).setMembers(members);

        c.addMapConfig(mapConfig(cfg));
        c.getSerializationConfig().getCompactSerializationConfig()
                .addSerializer(new KvSerializers.BlockKeySerializer())
                .addSerializer(new KvSerializers.KvBlockSerializer());
        return c;
    }

    /** The IP literal of {@code host} (a name is resolved once, here, as the member would). */
    static String bindAddress(String host) {
        try {
            return InetAddress.getByName(host).getHostAddress();
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("cannot resolve the KV member's host '" + host + "'", e);
        }
    }

    /**
     * Starts a member with {@link #member}'s configuration and has the cluster assign its partitions at once.
     * Members assign partitions lazily, on the first member-side operation; a cluster that only clients talk
     * to would otherwise leave a client's first calls waiting for an owner (about 5 s).
     */
    public static HazelcastInstance startMember(KvStoreConfig cfg, boolean gracefulShutdownHook) {
        HazelcastInstance hz = Hazelcast.newHazelcastInstance(member(cfg, gracefulShutdownHook));
        hz.getPartitionService().getPartition(0).getOwner();
        return hz;
    }

    /**
     * A client's configuration (the map's eviction and backups are the members' business). The client starts
     * without waiting for the cluster; {@link KvStores#create} waits up to {@code connectTimeoutMillis}.
     */
    public static ClientConfig client(KvStoreConfig cfg) {
        ClientConfig c = new ClientConfig();
        c.setClusterName(cfg.clusterName());
        commonProperties(c.getProperties());
        c.getNetworkConfig().setAddresses(new ArrayList<>(cfg.members()));
        // The tier is best effort: start without it, keep trying to reach it forever (connect timeout -1),
        // and while disconnected fail operations at once (ASYNC) instead of holding lookups until a timeout.
        c.getConnectionStrategyConfig()
                .setAsyncStart(true)
                .setReconnectMode(ClientConnectionStrategyConfig.ReconnectMode.ASYNC)
                .getConnectionRetryConfig().setClusterConnectTimeoutMillis(-1).setMaxBackoffMillis(5_000);
        if (cfg.nearCache()) {
            c.addNearCacheConfig(nearCacheConfig(cfg).setName(cfg.mapName()));
        }
        c.getSerializationConfig().getCompactSerializationConfig()
                .addSerializer(new KvSerializers.BlockKeySerializer())
                .addSerializer(new KvSerializers.KvBlockSerializer());
        return c;
    }

    static MapConfig mapConfig(KvStoreConfig cfg) {
        EvictionConfig eviction = new EvictionConfig().setEvictionPolicy(EvictionPolicy.LRU);
        if (cfg.maxEntriesPerMember() > 0) {
            eviction.setMaxSizePolicy(MaxSizePolicy.PER_NODE).setSize(cfg.maxEntriesPerMember());
        } else {
            eviction.setMaxSizePolicy(MaxSizePolicy.USED_HEAP_SIZE).setSize(cfg.maxHeapMbPerMember());
        }
        MapConfig m = new MapConfig(MAP_PATTERN)
                .setInMemoryFormat(InMemoryFormat.BINARY)
                .setBackupCount(cfg.backupCount())
                .setAsyncBackupCount(0)
                // Entries are content-addressed and never change, so reading a local backup is never stale.
                .setReadBackupData(true)
                .setStatisticsEnabled(true)
                .setPerEntryStatsEnabled(false)
                .setEvictionConfig(eviction);
        if (cfg.nearCache()) {
            m.setNearCacheConfig(nearCacheConfig(cfg));
        }
        return m;
    }

    private static NearCacheConfig nearCacheConfig(KvStoreConfig cfg) {
        return new NearCacheConfig(MAP_PATTERN)
                // BINARY: each hit deserialises a fresh block, so a caller may keep or change what it got.
                .setInMemoryFormat(InMemoryFormat.BINARY)
                .setInvalidateOnChange(true)
                .setCacheLocalEntries(false)
                .setEvictionConfig(new EvictionConfig().setEvictionPolicy(EvictionPolicy.LRU)
                        .setMaxSizePolicy(MaxSizePolicy.ENTRY_COUNT).setSize(cfg.nearCacheMaxEntries()));
    }

    private static void commonProperties(java.util.Properties p) {
        p.setProperty("hazelcast.phone.home.enabled", "false");
        p.setProperty("hazelcast.logging.type", "slf4j");
    }
}
