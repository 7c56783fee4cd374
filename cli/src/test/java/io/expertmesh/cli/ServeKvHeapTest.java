package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A router asked for more KV cache than its heap holds fails at once with one line that says what fits, not with
 * an OutOfMemoryError after half a minute of collections.
 */
class ServeKvHeapTest {
    private static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");

    @Test
    void serve_kvCacheLargerThanTheHeap_exits2WithOneLine() throws Exception {
        ChildProcesses.Ended run = ChildProcesses.runToEnd(List.of("-Xmx512m"), List.of("serve",
                "--model", FIXTURE.toString(), "--port", "0", "--threads", "1", "--kv-store", "none",
                "--kv-cache-mb", "4096"), 120);
        String out = run.output();
        assertEquals(2, run.exitCode(), out);
        List<String> lines = out.lines().toList();
        assertEquals(1, lines.stream().filter(l -> l.startsWith(
                "expertmesh serve: --kv-cache-mb 4096 does not fit the Java heap")).count(), out);
        assertTrue(lines.stream().anyMatch(l -> l.contains("EXPERTMESH_JAVA_OPTS=-Xmx")), out);
        assertTrue(lines.stream().noneMatch(l -> l.startsWith("\tat ") || l.startsWith("Caused by")),
                "no stack trace:\n" + out);
    }
}
