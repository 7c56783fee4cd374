package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.kvcache.KvSecret;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code expertmesh cluster}'s options and argument errors (no processes started). */
class ClusterCommandTest {

    @Test
    void cluster_defaults_twoWorkersOneCacheNodePort50051() {
        ClusterCommand c = (ClusterCommand) Main.commandLine(CommandLine.defaultFactory(), java.util.Map.of())
                .parseArgs("cluster").subcommand().commandSpec().userObject();
        assertEquals(2, c.workers);
        assertEquals(1, c.cacheNodes);
        assertEquals(50051, c.port);
        assertNull(c.redundantExperts);
        assertNull(c.model, "the built-in default model");
        assertEquals("127.0.0.1", c.host, "no flag exposes the cluster's unauthenticated services to the network");
        assertEquals(5, c.maxRestarts);
        assertEquals(120, c.restartWindowSeconds);
        assertEquals(1, c.routers);
    }

    @Test
    void cluster_negativeMaxRestarts_usageError() {
        assertTrue(runExpectingUsageError("cluster", "--max-restarts", "-1").contains("--max-restarts"));
    }

    private static String runExpectingUsageError(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setErr(new PrintWriter(err));
        assertEquals(2, cl.execute(args));
        return err.toString();
    }

    @Test
    void kvSecretFile_freshOwnerOnlySecretPerRun() throws Exception {
        Path a = ClusterCommand.kvSecretFile();
        Path b = ClusterCommand.kvSecretFile();

        KvSecret.read(a); // long enough, readable
        assertTrue(!Files.readString(a).equals(Files.readString(b)), "one per run");
        if (a.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            assertEquals("rw-------", PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(a)));
        }
    }

    @Test
    void cluster_noWorkers_usageErrorBeforeStartingAnything() {
        String err = runExpectingUsageError("cluster", "--workers", "0");
        assertTrue(err.contains("--workers must be >= 1"), err);
    }

    @Test
    void cluster_missingModelDirectory_usageError() {
        String err = runExpectingUsageError("cluster", "--model", "/no/such/model");
        assertTrue(err.contains("/no/such/model") && err.contains("not a directory"), err);
    }

    @Test
    void cluster_negativeCacheNodesOrBadPort_usageError() {
        assertTrue(runExpectingUsageError("cluster", "--cache-nodes", "-1").contains("--cache-nodes"));
        assertTrue(runExpectingUsageError("cluster", "--port", "70000").contains("--port"));
    }

    @Test
    void cluster_routersWithoutCacheTierOrBelowOne_usageError() {
        String err = runExpectingUsageError("cluster", "--routers", "2", "--cache-nodes", "0");
        assertTrue(err.contains("--cache-nodes must be >= 1") && err.strip().lines().count() == 1, err);
        assertTrue(runExpectingUsageError("cluster", "--routers", "0").contains("--routers must be >= 1"));
    }
}
