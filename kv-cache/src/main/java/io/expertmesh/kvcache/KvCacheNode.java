package io.expertmesh.kvcache;

import com.hazelcast.core.HazelcastInstance;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A standalone member of the KV tier (later {@code bin/expertmesh cache-node}): holds blocks for routers that
 * run in CLIENT mode, or alongside routers that run EMBEDDED members, with the same map configuration.
 * Stops gracefully on SIGTERM (its partitions move to the other members first). It listens on {@code --host}
 * only, and holds no {@link KvSecret}: routers sign and check blocks, a node only stores them.
 *
 * <pre>
 * java $HAZELCAST_ADD_OPENS -cp ... io.expertmesh.kvcache.KvCacheNode \
 *     --cluster-name expertmesh-kv --host 10.0.0.5 --port 5801 \
 *     --members 10.0.0.5:5801,10.0.0.6:5801 --backup-count 1 --max-heap-mb 8192
 * </pre>
 */
public final class KvCacheNode {
    private static final Logger log = LoggerFactory.getLogger(KvCacheNode.class);

    private KvCacheNode() {
    }

    public static void main(String[] args) {
        KvStoreConfig cfg;
        try {
            cfg = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("kv cache node: " + e.getMessage());
            System.err.println(usage());
            System.exit(2);
            return;
        }
        start(cfg, true);
        // Hazelcast's non-daemon threads keep the JVM up until SIGTERM.
    }

    /**
     * Starts a member with the graceful shutdown hook and blocks until it has shut down (SIGTERM); what
     * {@code bin/expertmesh cache-node} runs.
     */
    public static void run(KvStoreConfig cfg) throws InterruptedException {
        HazelcastInstance hz = start(cfg, true);
        while (hz.getLifecycleService().isRunning()) {
            Thread.sleep(500);
        }
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

    /** {@code --name value} or {@code --name=value}; see {@link #usage()}. */
    static KvStoreConfig parse(String[] args) {
        KvStoreConfig.Builder b = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED);
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String name;
            String value;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                name = a.substring(2, eq);
                value = a.substring(eq + 1);
            } else if (a.startsWith("--") && i + 1 < args.length) {
                name = a.substring(2);
                value = args[++i];
            } else {
                throw new IllegalArgumentException("unexpected argument '" + a + "'");
            }
            switch (name) {
                case "cluster-name" -> b.clusterName(value);
                case "host" -> b.memberHost(value);
                case "port" -> b.memberPort(parseInt(name, value));
                case "members" -> b.members(value);
                case "backup-count" -> b.backupCount(parseInt(name, value));
                case "max-entries" -> b.maxEntriesPerMember(parseInt(name, value));
                case "max-heap-mb" -> b.maxHeapMbPerMember(parseInt(name, value));
                case "partition-count" -> b.partitionCount(parseInt(name, value));
                case "near-cache" -> b.nearCache(Boolean.parseBoolean(value));
                default -> throw new IllegalArgumentException("unknown option --" + name);
            }
        }
        return b.build();
    }

    private static int parseInt(String name, String value) {
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be an integer, got '" + value + "'");
        }
    }

    static String usage() {
        return """
                usage: KvCacheNode [--cluster-name expertmesh-kv] [--host 127.0.0.1] [--port 5801]
                                   [--members host:port,host:port] [--backup-count 1]
                                   [--max-heap-mb 1024 | --max-entries N] [--partition-count 271]""";
    }
}
