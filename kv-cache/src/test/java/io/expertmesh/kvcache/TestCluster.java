package io.expertmesh.kvcache;

import com.hazelcast.core.HazelcastInstance;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.function.BooleanSupplier;

/**
 * Real Hazelcast members on loopback for one test: a cluster name of its own and free ports, so tests never
 * join each other. {@link #close()} terminates everything (fast; graceful shutdown is not under test).
 */
final class TestCluster implements AutoCloseable {
    final String clusterName = "kv-test-" + UUID.randomUUID();
    final List<Integer> ports = new ArrayList<>();
    private final List<KvBlockStore> stores = new ArrayList<>();
    private final List<HazelcastInstance> instances = new ArrayList<>();

    TestCluster(int members) {
        for (int i = 0; i < members; i++) {
            ports.add(freePort());
        }
    }

    /** Members' {@code host:port} list. */
    List<String> memberList() {
        return ports.stream().map(p -> "127.0.0.1:" + p).toList();
    }

    /** A config for member {@code i} (EMBEDDED), small partition count, tests' defaults. */
    KvStoreConfig.Builder member(int i) {
        return KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).clusterName(clusterName).members(memberList())
                .memberPort(ports.get(i)).partitionCount(23).maxEntriesPerMember(10_000);
    }

    /** Starts member {@code i} through {@link KvStores#create}; the store owns it. */
    HazelcastKvBlockStore startStore(KvStoreConfig cfg) {
        HazelcastKvBlockStore s = (HazelcastKvBlockStore) KvStores.create(cfg);
        stores.add(s);
        instances.add(s.instance());
        return s;
    }

    KvBlockStore track(KvBlockStore s) {
        stores.add(s);
        return s;
    }

    HazelcastInstance track(HazelcastInstance hz) {
        instances.add(hz);
        return hz;
    }

    static void awaitTrue(Duration timeout, BooleanSupplier condition, String what) {
        long end = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    static void awaitPublished(KvBlockStore store, long n) {
        awaitTrue(Duration.ofSeconds(20), () -> store.stats().published() + store.stats().publishErrors() >= n,
                n + " blocks published");
    }

    @Override
    public void close() {
        for (HazelcastInstance hz : instances) {
            try {
                hz.getLifecycleService().terminate();
            } catch (RuntimeException ignored) {
                // already gone
            }
        }
        for (KvBlockStore s : stores) {
            s.close();
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
