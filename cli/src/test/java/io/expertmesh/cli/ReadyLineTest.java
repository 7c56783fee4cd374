package io.expertmesh.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The ready lines of the long-running commands as real processes, stdout and stderr apart: every one is on stdout,
 * printed once the server is bound, and a cache node on a busy port is one line and exit 2.
 */
class ReadyLineTest {
    private static final Pattern PORT = Pattern.compile("(?:on port |:)(\\d+)$");
    private final List<Process> processes = new ArrayList<>();

    /** A started process with its stdout and stderr lines, collected apart. */
    private record Started(Process process, List<String> out, List<String> err) {
    }

    private Started start(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElseThrow());
        cmd.addAll(ChildProcesses.JVM_FLAGS);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        processes.add(p);
        Started s = new Started(p, new CopyOnWriteArrayList<>(), new CopyOnWriteArrayList<>());
        collect(p.getInputStream(), s.out());
        collect(p.getErrorStream(), s.err());
        return s;
    }

    private static void collect(InputStream in, List<String> lines) {
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    lines.add(line);
                }
            } catch (IOException gone) {
                // the process ended
            }
        });
    }

    @AfterEach
    void stop() throws InterruptedException {
        for (Process p : processes) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** Waits for the line starting with {@code prefix} on stdout; returns the port it names. */
    private static int awaitReady(Started s, String prefix) {
        await(prefix).atMost(Duration.ofSeconds(120)).until(() -> !s.process().isAlive()
                || s.out().stream().anyMatch(l -> l.startsWith(prefix)));
        String line = s.out().stream().filter(l -> l.startsWith(prefix)).findFirst()
                .orElseThrow(() -> new AssertionError("no '" + prefix + "' on stdout; out " + s.out() + " err "
                        + s.err()));
        assertTrue(s.err().stream().noneMatch(l -> l.startsWith(prefix)), "not on stderr too: " + s.err());
        Matcher m = PORT.matcher(line);
        assertTrue(m.find(), line);
        return Integer.parseInt(m.group(1));
    }

    private static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void serve_ready_lineOnStdout() throws Exception {
        Started s = start("serve", "--model", RunCommandTest.FIXTURE.toString(), "--host", "127.0.0.1", "--port",
                "0", "--kv-store", "none", "--kv-cache-mb", "16", "--threads", "1");
        assertTrue(accepts(awaitReady(s, "expertmesh serving f32 on port ")));
    }

    @Test
    void worker_ready_lineOnStdout() throws Exception {
        Started s = start("worker", "--model", RunCommandTest.FIXTURE.toString(), "--host", "127.0.0.1", "--port",
                "0", "--threads", "1");
        assertTrue(accepts(awaitReady(s, "expertmesh worker serving experts all of f32 on port ")));
    }

    @Test
    void cacheNode_ready_lineOnStdoutOnceTheMemberAcceptsConnections() throws Exception {
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        Started s = start("cache-node", "--port", String.valueOf(port));
        assertEquals(port, awaitReady(s, "expertmesh cache node serving cluster expertmesh-kv on 127.0.0.1:"));
        assertTrue(accepts(port), "bound before the line");
    }

    @Test
    void cacheNode_busyPort_oneLineExit2AndNoReadyLine() throws Exception {
        try (ServerSocket busy = new ServerSocket()) {
            busy.bind(new InetSocketAddress("127.0.0.1", 0));
            Started s = start("cache-node", "--port", String.valueOf(busy.getLocalPort()));
            assertTrue(s.process().waitFor(120, TimeUnit.SECONDS));
            assertEquals(2, s.process().exitValue());
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> s.err().stream().anyMatch(l -> l.startsWith("expertmesh cache-node")));
            List<String> err = s.err().stream().filter(l -> !l.startsWith("WARNING: Using incubator modules")).toList();
            assertEquals(List.of("expertmesh cache-node: cannot listen on 127.0.0.1:" + busy.getLocalPort()
                    + " (in use, or not an address of this machine); choose another --port or --host"), err);
            assertEquals(List.of(), s.out(), "no ready line");
        }
    }
}
