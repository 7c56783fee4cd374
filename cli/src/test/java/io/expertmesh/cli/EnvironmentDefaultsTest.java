package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code EXPERTMESH_FOO_BAR} sets {@code --foo-bar} of serve, worker, cluster and cache-node. */
class EnvironmentDefaultsTest {

    private static <T> T parse(Map<String, String> env, String... args) {
        CommandLine cl = Main.commandLine(CommandLine.defaultFactory(), env);
        @SuppressWarnings("unchecked")
        T cmd = (T) cl.parseArgs(args).subcommand().commandSpec().userObject();
        return cmd;
    }

    @Test
    void serve_envVariables_setOptionsIncludingMixinAndBooleanFlags() {
        ServeCommand s = parse(Map.of("EXPERTMESH_PORT", "6001", "EXPERTMESH_KV_CACHE_MB", "64",
                "EXPERTMESH_NO_PREFIX_CACHING", "true", "EXPERTMESH_MODEL", "/models/v3", "EXPERTMESH_THREADS", "3",
                "EXPERTMESH_KV_STORE", "hazelcast-client", "EXPERTMESH_KV_MEMBERS", "cache-0:5801"), "serve");
        assertEquals(6001, s.port);
        assertEquals(64, s.kvCacheMb);
        assertTrue(s.noPrefixCaching);
        assertEquals("/models/v3", s.model.model.toString());
        assertEquals(3, s.model.threads);
        assertEquals(ServeCommand.KvStoreMode.hazelcast_client, s.kvStore);
        assertEquals("cache-0:5801", s.kvMembers);
    }

    @Test
    void serve_workersFromVariable_splitLikeTheFlag() {
        ServeCommand s = parse(Map.of("EXPERTMESH_WORKERS", "expert-worker-0.expert-workers:50061,"
                + "expert-worker-1.expert-workers:50061", "EXPERTMESH_REDUNDANT_EXPERTS", "1"), "serve");
        assertEquals(java.util.List.of("expert-worker-0.expert-workers:50061", "expert-worker-1.expert-workers:50061"),
                s.workers);
        assertEquals(1, s.redundantExperts);
    }

    @Test
    void serve_flagAndVariable_flagWins() {
        ServeCommand s = parse(Map.of("EXPERTMESH_PORT", "6001"), "serve", "--port", "7001");
        assertEquals(7001, s.port);
    }

    @Test
    void serve_noVariables_annotatedDefaults() {
        ServeCommand s = parse(Map.of(), "serve");
        assertEquals(50051, s.port);
        assertEquals(1024, s.kvCacheMb);
    }

    @Test
    void workerClusterCacheNode_envVariables_setTheirOptions() {
        WorkerCommand w = parse(Map.of("EXPERTMESH_EXPERTS", "none", "EXPERTMESH_PORT", "50061"), "worker");
        assertEquals("none", w.experts);
        assertEquals(50061, w.port);
        ClusterCommand c = parse(Map.of("EXPERTMESH_WORKERS", "4", "EXPERTMESH_CACHE_NODES", "0",
                "EXPERTMESH_REDUNDANT_EXPERTS", "2"), "cluster");
        assertEquals(4, c.workers);
        assertEquals(0, c.cacheNodes);
        assertEquals(2, c.redundantExperts);
        CacheNodeCommand n = parse(Map.of("EXPERTMESH_HOST", "0.0.0.0", "EXPERTMESH_MEMBERS", "a:5801,b:5801",
                "EXPERTMESH_BACKUP_COUNT", "2"), "cache-node");
        assertEquals("0.0.0.0", n.host);
        assertEquals("a:5801,b:5801", n.members);
        assertEquals(2, n.backupCount);
    }

    @Test
    void run_isNotConfiguredFromTheEnvironment() {
        CommandLine cl = Main.commandLine(CommandLine.defaultFactory(), Map.of("EXPERTMESH_MAX_TOKENS", "3"));
        assertNull(cl.getSubcommands().get("run").getDefaultValueProvider());
    }

    @Test
    void badValueFromVariable_parseErrorNamesTheOption() {
        CommandLine cl = Main.commandLine(CommandLine.defaultFactory(), Map.of("EXPERTMESH_PORT", "abc"));
        CommandLine.ParameterException e = assertThrows(CommandLine.ParameterException.class,
                () -> cl.parseArgs("worker"));
        assertTrue(e.getMessage().contains("--port") && e.getMessage().contains("abc"), e.getMessage());
    }

    @Test
    void variables_ofServe_includeEveryOptionButHelp() {
        CommandLine cl = Main.commandLine(CommandLine.defaultFactory(), Map.of());
        Set<String> names = EnvironmentDefaults.variables(cl.getSubcommands().get("serve").getCommandSpec());
        assertTrue(names.containsAll(Set.of("EXPERTMESH_PORT", "EXPERTMESH_KV_MEMBERS", "EXPERTMESH_MODEL",
                "EXPERTMESH_DRAIN_GRACE_SECONDS")), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("HELP") || n.contains("VERSION")), names.toString());
    }
}
