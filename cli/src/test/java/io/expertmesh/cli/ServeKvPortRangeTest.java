package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
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
                ChildProcesses.Ended run = ChildProcesses.runToEnd(List.of(), List.of("serve",
                        "--model", FIXTURE.toString(), "--port", "0", "--threads", "1", "--kv-cache-mb", "8",
                        "--kv-port", String.valueOf(first), "--kv-port-count", "2",
                        "--kv-cluster-name", "range-taken-" + first), 120);
                String out = run.output();
                assertEquals(2, run.exitCode(), out);
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
