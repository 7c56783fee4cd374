package io.expertmesh.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** {@code expertmesh} subcommands as real OS processes for tests; stops every one it started. */
final class ChildProcesses implements AutoCloseable {
    /** As {@code hazelcast.jvm.flags} in the root pom and bin/expertmesh. */
    static final List<String> JVM_FLAGS = List.of("--add-modules", "jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED", "-XX:+UseParallelGC", "-Xmx1g",
            "--add-modules", "java.se", "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens", "java.management/sun.management=ALL-UNNAMED",
            "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED", "-Dai.djl.offline=true");
    static final Pattern SERVING_PORT = Pattern.compile("serving .* on port (\\d+)");

    /** A started process, the port it printed, and its output so far. */
    record Child(String name, Process process, int port, List<String> output) {
        String address() {
            return "127.0.0.1:" + port;
        }
    }

    private final List<Process> processes = new ArrayList<>();

    /** How a process run to its end ended: its exit code and everything it printed (stdout and stderr). */
    record Ended(int exitCode, String output) {
    }

    /**
     * Runs {@code Main args…} with {@link #JVM_FLAGS} and then {@code extraJvmFlags} (later flags win) until it
     * exits, at most {@code timeoutSeconds}; a process still running then fails the test.
     */
    static Ended runToEnd(List<String> extraJvmFlags, List<String> args, long timeoutSeconds) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElseThrow());
        cmd.addAll(JVM_FLAGS);
        cmd.addAll(extraJvmFlags);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "io.expertmesh.cli.Main"));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                throw new AssertionError("still running after " + timeoutSeconds + " s:\n" + out);
            }
            return new Ended(p.exitValue(), out);
        } finally {
            p.destroyForcibly();
        }
    }

    /** Starts {@code Main args…} and waits (up to 90 s) for its "serving … on port N" line. */
    Child start(String name, List<String> args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElseThrow());
        cmd.addAll(JVM_FLAGS);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "io.expertmesh.cli.Main"));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        processes.add(p);
        List<String> output = new CopyOnWriteArrayList<>();
        CompletableFuture<Child> started = new CompletableFuture<>();
        Thread.ofPlatform().daemon().name(name + "-output").start(() -> {
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) {
                    output.add(line);
                    Matcher m = SERVING_PORT.matcher(line);
                    if (m.find() && line.startsWith("expertmesh")) {
                        started.complete(new Child(name, p, Integer.parseInt(m.group(1)), output));
                    }
                }
            } catch (IOException e) {
                // the process went away; reported below
            }
            started.completeExceptionally(new AssertionError(name + " ended its output before serving:\n"
                    + String.join("\n", output)));
        });
        return started.get(90, TimeUnit.SECONDS);
    }

    @Override
    public void close() throws InterruptedException {
        for (Process p : processes) {
            p.destroy();
        }
        for (Process p : processes) {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
            }
        }
    }
}
