package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A router whose whole embedded-member port range is taken fails with one line, no stack trace. */
class ServeKvPortRangeTest {
    private static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");

    @Test
    void serve_everyPortOfTheKvRangeTaken_exits2WithOneLineNamingTheRange() throws Exception {
        InetAddress lo = InetAddress.getLoopbackAddress();
        try (ServerSocket a = new ServerSocket(0, 1, lo)) {
            int first = a.getLocalPort();
            try (ServerSocket b = new ServerSocket(first + 1, 1, lo)) {
                List<String> cmd = new ArrayList<>();
                cmd.add(ProcessHandle.current().info().command().orElseThrow());
                cmd.addAll(ChildProcesses.JVM_FLAGS);
                cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "io.expertmesh.cli.Main", "serve",
                        "--model", FIXTURE.toString(), "--port", "0", "--threads", "1", "--kv-cache-mb", "8",
                        "--kv-port", String.valueOf(first), "--kv-port-count", "2",
                        "--kv-cluster-name", "range-taken-" + first));
                Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
                String out;
                try {
                    out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "serve exits");
                } finally {
                    p.destroyForcibly();
                }

                assertEquals(2, p.exitValue(), out);
                List<String> lines = out.lines().toList();
                String error = "expertmesh serve: cannot start the KV store's Hazelcast member on 127.0.0.1:" + first
                        + ".." + (first + 1) + ": ";
                assertEquals(1, lines.stream().filter(l -> l.startsWith(error)).count(), out);
                assertTrue(lines.stream().noneMatch(l -> l.startsWith("\tat ") || l.startsWith("Caused by")),
                        "no stack trace:\n" + out);
            }
        } catch (IOException busy) {
            // first + 1 taken by someone else: nothing to prove this time
            org.junit.jupiter.api.Assumptions.abort("port next to a free one is busy: " + busy);
        }
    }
}
