package io.expertmesh.kvcache;

import com.hazelcast.core.HazelcastInstance;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A standalone member of the KV tier, started by {@code bin/expertmesh cache-node} (cli's CacheNodeCommand parses
 * its flags): holds blocks for routers that run in CLIENT mode, or alongside routers that run EMBEDDED members,
 * with the same map configuration. Stops gracefully on SIGTERM (its partitions move to the other members first).
 * It listens on {@code --host} only, and holds no {@link KvSecret}: routers sign and check blocks, a node only
 * stores them.
 */
public final class KvCacheNode {
    private static final Logger log = LoggerFactory.getLogger(KvCacheNode.class);

    private KvCacheNode() {
    }

    /**
     * Starts a member with the tier's configuration.
     *
     * @throws KvStoreStartException when Hazelcast cannot start it (its port is taken, its host is not this one's)
     *
     * @param gracefulShutdownHook install Hazelcast's graceful shutdown hook (true for a real node)
     */
    public static HazelcastInstance start(KvStoreConfig cfg, boolean gracefulShutdownHook) {
        log.info("KV cache node starting: cluster {} on {}:{}, members {}, backups {}, bound {}",
                cfg.clusterName(), cfg.memberHost(), cfg.memberPort(), cfg.members(), cfg.backupCount(),
                cfg.maxEntriesPerMember() > 0 ? cfg.maxEntriesPerMember() + " entries/member"
                        : cfg.maxHeapMbPerMember() + " MB/member");
        HazelcastInstance hz;
        try {
            hz = HazelcastConfigs.startMember(cfg, gracefulShutdownHook);
        } catch (com.hazelcast.core.HazelcastException e) {
            // e.g. the port is taken: one line for the operator (the command line prints it without a trace)
            throw new KvStoreStartException("cannot start the KV cache node on " + cfg.memberHost() + ":"
                    + cfg.memberPort() + ": " + e.getMessage(), e);
        }
        log.info("KV cache node up: {} member(s) in cluster {}", hz.getCluster().getMembers().size(),
                cfg.clusterName());
        return hz;
    }
}
