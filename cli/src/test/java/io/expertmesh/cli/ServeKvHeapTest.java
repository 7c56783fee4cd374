package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A router asked for more KV cache than its heap holds fails at once with one line that says what fits, not with
 * an OutOfMemoryError after half a minute of collections.
 */
class ServeKvHeapTest {
    private static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");

    @Test
    void serve_kvCacheLargerThanTheHeap_exits2WithOneLine() throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElseThrow());
        cmd.addAll(ChildProcesses.JVM_FLAGS);
        cmd.add("-Xmx512m");
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "io.expertmesh.cli.Main", "serve",
                "--model", FIXTURE.toString(), "--port", "0", "--threads", "1", "--kv-store", "none",
                "--kv-cache-mb", "4096"));
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
        assertEquals(1, lines.stream().filter(l -> l.startsWith(
                "expertmesh serve: --kv-cache-mb 4096 does not fit the Java heap")).count(), out);
        assertTrue(lines.stream().anyMatch(l -> l.contains("EXPERTMESH_JAVA_OPTS=-Xmx")), out);
        assertTrue(lines.stream().noneMatch(l -> l.startsWith("\tat ") || l.startsWith("Caused by")),
                "no stack trace:\n" + out);
    }
}
