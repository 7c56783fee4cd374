package io.expertmesh.kvcache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.hazelcast.core.HazelcastInstance;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Where a member listens: only its configured address, and the first free port of its range at bind time. */
class MemberBindingTest {
    private final List<HazelcastInstance> started = new ArrayList<>();

    @AfterEach
    void terminate() {
        for (HazelcastInstance hz : started) {
            try {
                hz.getLifecycleService().terminate();
            } catch (RuntimeException ignored) {
                // already gone
            }
        }
    }

    /**
     * An address of this host other than 127.0.0.1: a non-loopback IPv4 of an interface that is up, else
     * 127.0.0.2 (Linux routes all of 127/8 to the loopback interface). A wildcard listener accepts on it.
     */
    private static InetAddress otherLocalAddress() throws SocketException {
        for (NetworkInterface nif : NetworkInterface.networkInterfaces().toList()) {
            if (nif.isUp() && !nif.isLoopback()) {
                for (InetAddress a : nif.inetAddresses().toList()) {
                    if (a instanceof Inet4Address && !a.isLinkLocalAddress()) {
                        return a;
                    }
                }
            }
        }
        return InetAddress.ofLiteral("127.0.0.2");
    }

    private static boolean accepts(InetAddress address, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(address, port), 2_000);
            return true;
        } catch (IOException refused) {
            return false;
        }
    }

    @Test
    void member_onLoopback_listensOnLoopbackOnly_notOnTheHostsOtherAddresses() throws Exception {
        InetAddress other = otherLocalAddress();
        // Check the check: on this address a wildcard listener is reachable (else the test proves nothing).
        try (ServerSocket wildcard = new ServerSocket(0)) {
            assertTrue(accepts(other, wildcard.getLocalPort()), "a wildcard listener is reachable on " + other);
        }
        TestCluster cluster = new TestCluster(1);
        HazelcastInstance hz = KvCacheNode.start(cluster.member(0).build(), false);
        started.add(hz);
        int port = cluster.ports.get(0);

        assertTrue(accepts(InetAddress.getLoopbackAddress(), port), "reachable on 127.0.0.1:" + port);
        assertTrue(!accepts(other, port), "the member must not listen on " + other + ":" + port);
        InetSocketAddress advertised = hz.getCluster().getLocalMember().getSocketAddress();
        assertEquals("127.0.0.1", advertised.getAddress().getHostAddress());
    }

    @Test
    void members_startedAtOnceOnOneRange_eachBindsAFreePortOfIt_andTheyFormOneCluster() throws Exception {
        int rounds = 3;
        int n = 3;
        for (int round = 0; round < rounds; round++) {
            int first = freeRange(n + 1);
            String cluster = "kv-bind-" + UUID.randomUUID();
            List<String> range = new ArrayList<>();
            for (int p = first; p < first + n + 1; p++) {
                range.add("127.0.0.1:" + p);
            }
            // Every member is told the same first port, as routers with the default --kv-port are.
            KvStoreConfig cfg = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).clusterName(cluster)
                    .members(range).memberPort(first).memberPortCount(n + 1).partitionCount(23)
                    .maxEntriesPerMember(1000).build();
            List<HazelcastInstance> members = startAtOnce(n, () -> HazelcastConfigs.startMember(cfg, false));
            started.addAll(members);

            Set<Integer> ports = new HashSet<>();
            for (HazelcastInstance hz : members) {
                int p = hz.getCluster().getLocalMember().getSocketAddress().getPort();
                assertTrue(p >= first && p <= first + n, "port " + p + " outside " + first + ".." + (first + n));
                ports.add(p);
            }
            assertEquals(n, ports.size(), "round " + round + ": one port each " + ports);
            TestCluster.awaitTrue(Duration.ofSeconds(60), () -> members.stream()
                    .allMatch(hz -> hz.getCluster().getMembers().size() == n), "round " + round + ": one cluster");
            members.forEach(hz -> hz.getLifecycleService().terminate());
        }
    }

    @Test
    void member_wholeRangeTaken_failsWithOneLineNamingTheRange() throws Exception {
        int first = freeRange(2);
        try (ServerSocket a = new ServerSocket(first, 1, InetAddress.getLoopbackAddress());
             ServerSocket b = new ServerSocket(first + 1, 1, InetAddress.getLoopbackAddress())) {
            KvStoreConfig cfg = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED)
                    .clusterName("kv-bind-" + UUID.randomUUID()).memberPort(first).memberPortCount(2)
                    .maxEntriesPerMember(1000).build();

            KvStoreStartException e = assertThrows(KvStoreStartException.class, () -> KvStores.create(cfg));

            assertTrue(e.getMessage().contains("127.0.0.1:" + first + ".." + (first + 1)), e.getMessage());
            assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
            assertInstanceOf(IllegalStateException.class, e);
        }
    }

    private static List<HazelcastInstance> startAtOnce(int n, Callable<HazelcastInstance> start) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
            List<Future<HazelcastInstance>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(pool.submit(() -> {
                    go.await();
                    return start.call();
                }));
            }
            go.countDown();
            List<HazelcastInstance> out = new ArrayList<>();
            List<Throwable> failed = new ArrayList<>();
            for (Future<HazelcastInstance> f : fs) {
                try {
                    out.add(f.get());
                } catch (java.util.concurrent.ExecutionException e) {
                    failed.add(e.getCause());
                }
            }
            if (!failed.isEmpty()) {
                out.forEach(hz -> hz.getLifecycleService().terminate());
                fail("members failed to start: " + failed);
            }
            assertNotNull(out);
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    /** The first of {@code count} consecutive ports that are free now on loopback. */
    static int freeRange(int count) throws IOException {
        for (int attempt = 0; attempt < 50; attempt++) {
            int first;
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                first = s.getLocalPort();
            }
            if (first + count - 1 > 65535) {
                continue;
            }
            boolean free = true;
            for (int p = first; p < first + count && free; p++) {
                try (ServerSocket probe = new ServerSocket(p, 1, InetAddress.getLoopbackAddress())) {
                    // free
                } catch (IOException busy) {
                    free = false;
                }
            }
            if (free) {
                return first;
            }
        }
        throw new IOException("no " + count + " consecutive free ports found");
    }
}
