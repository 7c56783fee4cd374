package io.expertmesh.cli;

import io.expertmesh.kvcache.KvCacheNode;
import io.expertmesh.kvcache.KvStoreConfig;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code expertmesh cache-node}: a standalone member of the distributed KV tier ({@link KvCacheNode}), for routers
 * that run {@code --kv-store hazelcast-client} or embedded members of the same cluster. Runs until SIGTERM, which
 * hands its partitions to the other members before it leaves.
 */
@Command(name = "cache-node", mixinStandardHelpOptions = true,
        description = "Run a standalone Hazelcast member of the distributed KV tier until SIGTERM.")
final class CacheNodeCommand implements Callable<Integer> {
    @Option(names = "--cluster-name", paramLabel = "NAME", description = "Cluster name (default expertmesh-kv).")
    String clusterName = "expertmesh-kv";

    @Option(names = "--host", paramLabel = "HOST", description = "Address to bind and advertise (default 127.0.0.1).")
    String host = "127.0.0.1";

    @Option(names = "--port", paramLabel = "P", description = "Member port (default 5801).")
    int port = 5801;

    @Option(names = "--members", paramLabel = "HOST:PORT,...",
            description = "The cluster's members, one host:port each (default: this member alone).")
    String members = "";

    @Option(names = "--backup-count", paramLabel = "N", description = "Synchronous backups per block (default 1).")
    int backupCount = 1;

    @Option(names = "--max-heap-mb", paramLabel = "MB",
            description = "Heap the blocks may use on this member before LRU eviction (default 1024).")
    int maxHeapMb = 1024;

    @Override
    public Integer call() throws Exception {
        KvStoreConfig cfg = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).clusterName(clusterName)
                .memberHost(host).memberPort(port).members(members).backupCount(backupCount)
                .maxHeapMbPerMember(maxHeapMb).build();
        System.err.println("expertmesh cache node " + host + ":" + port + " in cluster " + clusterName);
        KvCacheNode.run(cfg);
        return 0;
    }
}
