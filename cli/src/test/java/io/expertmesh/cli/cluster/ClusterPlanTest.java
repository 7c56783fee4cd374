package io.expertmesh.cli.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClusterPlanTest {
    private static final Path MODEL = Path.of("/models/v3");

    @Test
    void routerArgs_workersAndCacheNodes_listedAsHostPort() {
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001, 40002), List.of(45001, 45002),
                null, 2, 30);
        List<String> args = p.routerArgs();
        assertEquals("serve", args.getFirst());
        assertEquals("127.0.0.1:40001,127.0.0.1:40002", after(args, "--workers"));
        assertEquals("50051", after(args, "--port"));
        assertEquals("hazelcast-client", after(args, "--kv-store"));
        assertEquals("127.0.0.1:45001,127.0.0.1:45002", after(args, "--kv-members"));
        assertEquals("/models/v3", after(args, "--model"));
        assertTrue(!args.contains("--redundant-experts"), "left to the router's default: " + args);
    }

    @Test
    void routerArgs_noCacheNodes_embeddedMemberAndRedundantExperts() {
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001), List.of(), 2, 4, 5);
        List<String> args = p.routerArgs();
        assertTrue(!args.contains("--kv-store"), "serve's default, the embedded member: " + args);
        assertEquals("2", after(args, "--redundant-experts"));
        assertEquals("5", after(args, "--drain-grace-seconds"));
        assertEquals("4", after(args, "--threads"));
    }

    @Test
    void routerArgs_kvSecretFile_passedToTheRouterOnly() {
        Path secret = Path.of("/tmp/expertmesh-cluster-1/kv-secret");
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001), List.of(45001), null, 1, 30,
                null, null, secret);
        assertEquals(secret.toString(), after(p.routerArgs(), "--kv-secret-file"));
        assertTrue(!p.cacheNodeArgs(0).contains("--kv-secret-file"), "cache nodes never judge blocks");
        assertTrue(!new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001), List.of(), null, 1, 30)
                .routerArgs().contains("--kv-secret-file"));
    }

    @Test
    void workerArgs_holdNoExperts_onTheirOwnPort() {
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001, 40002), List.of(), null, 1, 30);
        assertEquals(List.of("worker", "--model", "/models/v3", "--host", "127.0.0.1", "--port", "40002",
                "--experts", "none", "--threads", "1"), p.workerArgs(1));
    }

    @Test
    void routerAndWorkerArgs_listenOnThePlanHostOnly() {
        ClusterPlan p = new ClusterPlan(MODEL, "10.1.2.3", 50051, List.of(40001), List.of(45001), null, 1, 30);
        assertEquals("10.1.2.3", after(p.routerArgs(), "--host"));
        assertEquals("10.1.2.3", after(p.workerArgs(0), "--host"));
        assertEquals("10.1.2.3", after(p.cacheNodeArgs(0), "--host"));
    }

    @Test
    void cacheNodeArgs_everyMemberListed() {
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001), List.of(45001, 45002), null, 1, 30);
        assertEquals(List.of("cache-node", "--host", "127.0.0.1", "--port", "45002", "--members",
                "127.0.0.1:45001,127.0.0.1:45002"), p.cacheNodeArgs(1));
    }

    @Test
    void tlsAndTokens_routerServesTlsAndCallsWorkersWithItsCertificate_workersAllowOnlyIt() {
        Path d = Path.of("/tls");
        ClusterTls tls = new ClusterTls(d.resolve("ca.pem"), d.resolve("router.pem"), d.resolve("router-key.pem"),
                d.resolve("worker.pem"), d.resolve("worker-key.pem"), "router");
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001), List.of(), null, 1, 30, tls,
                Path.of("/etc/tokens.txt"));
        List<String> r = p.routerArgs();
        assertEquals("/tls/router.pem", after(r, "--tls-cert"));
        assertEquals("/tls/router-key.pem", after(r, "--tls-key"));
        assertTrue(!r.contains("--tls-client-ca"), "clients need no certificate: " + r);
        assertEquals("/tls/ca.pem", after(r, "--worker-tls-ca"));
        assertEquals("/tls/router.pem", after(r, "--worker-tls-cert"));
        assertEquals("/tls/router-key.pem", after(r, "--worker-tls-key"));
        assertEquals("/etc/tokens.txt", after(r, "--auth-tokens"));
        List<String> w = p.workerArgs(0);
        assertEquals("/tls/worker.pem", after(w, "--tls-cert"));
        assertEquals("/tls/worker-key.pem", after(w, "--tls-key"));
        assertEquals("/tls/ca.pem", after(w, "--tls-client-ca"));
        assertEquals("router", after(w, "--allowed-clients"));
    }

    @Test
    void noTls_noSecurityFlags() {
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001), List.of(), null, 1, 30);
        for (List<String> args : List.of(p.routerArgs(), p.workerArgs(0))) {
            assertTrue(args.stream().noneMatch(a -> a.contains("tls") || a.contains("auth")), args.toString());
        }
    }

    @Test
    void noWorkers_rejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new ClusterPlan(MODEL, "127.0.0.1", 1, List.of(), List.of(), null, 1, 30));
        assertTrue(e.getMessage().contains("at least one worker"));
    }

    @Test
    void javaCommand_sameJvmFlagsWithoutDebugger() {
        List<String> cmd = JavaCommand.of("/jdk/bin/java", List.of("--add-modules", "jdk.incubator.vector",
                "-agentlib:jdwp=transport=dt_socket,server=y,address=5005", "-Xmx2g"), "a.jar:b.jar",
                "io.expertmesh.cli.Main", List.of("worker", "--port", "1"));
        assertEquals(List.of("/jdk/bin/java", "--add-modules", "jdk.incubator.vector", "-Xmx2g", "-cp", "a.jar:b.jar",
                "io.expertmesh.cli.Main", "worker", "--port", "1"), cmd);
    }

    private static String after(List<String> args, String flag) {
        int i = args.indexOf(flag);
        assertTrue(i >= 0 && i + 1 < args.size(), flag + " in " + args);
        return args.get(i + 1);
    }

    @Test
    void routers_sameArgumentsButThePort_targetsNameEveryRouter_needACacheTier() {
        ClusterPlan p = new ClusterPlan(MODEL, "127.0.0.1", 50051, List.of(40001), List.of(45001), null, 1, 30,
                null, null, null, List.of(50052, 50053));
        assertEquals(List.of(50051, 50052, 50053), p.routerPorts());
        assertEquals("127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50053", p.routerTargets());
        List<String> first = p.routerArgs(0);
        List<String> third = p.routerArgs(2);
        assertEquals("50053", after(third, "--port"));
        assertEquals(first.size(), third.size());
        for (int i = 0; i < first.size(); i++) {
            if (!"--port".equals(first.get(Math.max(0, i - 1)))) {
                assertEquals(first.get(i), third.get(i), "argument " + i);
            }
        }
        assertEquals("127.0.0.1:45001", after(third, "--kv-members"), "every router shares the cache tier");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ClusterPlan(MODEL,
                "127.0.0.1", 50051, List.of(40001), List.of(), null, 1, 30, null, null, null, List.of(50052)));
        assertTrue(e.getMessage().contains("--cache-nodes must be >= 1"), e.getMessage());
    }
}
