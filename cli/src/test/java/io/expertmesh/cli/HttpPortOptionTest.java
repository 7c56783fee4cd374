package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code --http-port}: off by default, on serve and cluster (passed to its router), and from the environment. */
class HttpPortOptionTest {

    static Object parse(Map<String, String> env, String... args) {
        return Main.commandLine(CommandLine.defaultFactory(), env).parseArgs(args).subcommand().commandSpec()
                .userObject();
    }

    @Test
    void serve_httpPort_offByDefaultSetByFlagOrEnvironment() {
        assertNull(((ServeCommand) parse(Map.of(), "serve")).httpPort);
        assertEquals(8000, ((ServeCommand) parse(Map.of(), "serve", "--http-port", "8000")).httpPort);
        assertEquals(8001, ((ServeCommand) parse(Map.of("EXPERTMESH_HTTP_PORT", "8001"), "serve")).httpPort);
    }

    @Test
    void cluster_httpPort_passedToTheRouterOnly() {
        assertNull(((ClusterCommand) parse(Map.of(), "cluster")).httpPort);
        assertEquals(0, ((ClusterCommand) parse(Map.of(), "cluster", "--http-port", "0")).httpPort);
        List<String> args = ClusterCommand.withHttpPort(List.of("serve", "--port", "50051"), 8000);
        assertEquals(List.of("serve", "--port", "50051", "--http-port", "8000"), args);
        assertEquals(List.of("serve"), ClusterCommand.withHttpPort(List.of("serve"), -1));
    }

    @Test
    void cluster_badHttpPort_usageError() {
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setErr(new PrintWriter(err));
        assertEquals(2, cl.execute("cluster", "--http-port", "70000"));
        assertTrue(err.toString().contains("--http-port"), err.toString());
    }
}
