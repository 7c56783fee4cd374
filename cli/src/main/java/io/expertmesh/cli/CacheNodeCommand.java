package io.expertmesh.cli;

import com.hazelcast.core.HazelcastException;
import com.hazelcast.core.HazelcastInstance;
import io.expertmesh.kvcache.KvCacheNode;
import io.expertmesh.kvcache.KvStoreConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

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

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        KvStoreConfig cfg = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).clusterName(clusterName)
                .memberHost(host).memberPort(port).members(members).backupCount(backupCount)
                .maxHeapMbPerMember(maxHeapMb).build();
        requireFreePort();
        HazelcastInstance hz;
        try {
            hz = KvCacheNode.start(cfg, true);
        } catch (HazelcastException e) {
            if (causedBy(e, BindException.class)) {
                throw busy(); // taken between the check and Hazelcast's bind
            }
            throw e;
        }
        // Only now: the member is bound and has joined, so whoever waits for this line can connect.
        PrintWriter out = spec.commandLine().getOut();
        out.println("expertmesh cache node serving cluster " + clusterName + " on " + host + ":" + port);
        out.flush();
        while (hz.getLifecycleService().isRunning()) {
            Thread.sleep(500);
        }
        return 0;
    }

    // Checked before Hazelcast starts: its own bind failure is an ERROR log with two stack traces.
    private void requireFreePort() {
        try (ServerSocket probe = new ServerSocket()) {
            probe.bind(new InetSocketAddress(host, port));
        } catch (IOException e) {
            throw busy();
        }
    }

    private IllegalArgumentException busy() {
        return new IllegalArgumentException("cannot listen on " + host + ":" + port
                + " (in use, or not an address of this machine); choose another --port or --host");
    }

    private static boolean causedBy(Throwable e, Class<? extends Throwable> type) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (type.isInstance(t)) {
                return true;
            }
        }
        return false;
    }
}
