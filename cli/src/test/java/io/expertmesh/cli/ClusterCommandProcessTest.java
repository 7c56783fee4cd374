package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.cli.cluster.JavaCommand;
import io.expertmesh.client.ClientConfig;
import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.client.ExpertMeshException;
import io.expertmesh.client.GenerateResult;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.GetWorkerStatusRequest;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.security.BearerToken;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code expertmesh cluster} as a real process tree on the reference fixture: a cache node, workers holding no
 * experts and a router that assigns them. Generates the same greedy tokens as {@code run}; SIGTERM stops every
 * child; a worker killed with SIGKILL is restarted and gets its experts back while requests keep succeeding, and
 * with {@code --max-restarts 0} takes the cluster down with a message naming it.
 */
class ClusterCommandProcessTest {
    private static final String MODEL = "../core/src/test/resources/fixtures/deepseek-v3-tiny/f32";
    private static final int[] PROMPT = {0, 818, 726, 297, 56, 207, 375, 667};
    private static final Pattern SERVING = Pattern.compile(
            "^expertmesh cluster serving f32 on 127\\.0\\.0\\.1:(\\d+) \\((\\d+) workers\\)$");

    private final List<Process> started = new ArrayList<>();

    /** A running cluster process, its router port, and its stdout and stderr lines so far. */
    private record Cluster(Process process, int port, List<String> out, List<String> err) {
    }

    @AfterEach
    void tearDown() throws InterruptedException {
        for (Process p : started) {
            List<ProcessHandle> tree = p.descendants().toList();
            p.destroyForcibly();
            tree.forEach(ProcessHandle::destroyForcibly);
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private Cluster start(String... args) throws Exception {
        return start(java.util.Map.of(), args);
    }

    private Cluster start(java.util.Map<String, String> env, String... args) throws Exception {
        List<String> cliArgs = new ArrayList<>(List.of("cluster", "--model", MODEL, "--port", "0", "--threads", "1",
                "--drain-grace-seconds", "5", "--startup-timeout-seconds", "120"));
        cliArgs.addAll(Arrays.asList(args));
        ProcessBuilder pb = new ProcessBuilder(JavaCommand.of(Main.class.getName(), cliArgs));
        pb.environment().putAll(env);
        Process p = pb.start();
        started.add(p);
        List<String> out = new CopyOnWriteArrayList<>();
        List<String> err = new CopyOnWriteArrayList<>();
        CompletableFuture<Integer> port = new CompletableFuture<>();
        collect(p.getInputStream(), out, line -> {
            Matcher m = SERVING.matcher(line);
            if (m.matches()) {
                port.complete(Integer.parseInt(m.group(1)));
            }
        });
        collect(p.getErrorStream(), err, line -> { });
        p.onExit().thenRun(() -> port.completeExceptionally(new AssertionError("cluster exited ("
                + p.exitValue() + ") before serving:\n" + String.join("\n", err))));
        return new Cluster(p, port.get(180, TimeUnit.SECONDS), out, err);
    }

    private static void collect(InputStream in, List<String> lines, java.util.function.Consumer<String> each) {
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    lines.add(line);
                    each.accept(line);
                }
            } catch (IOException e) {
                // the process ended
            }
        });
    }

    /** The greedy tokens {@code expertmesh run} prints for the prompt (one process, experts in process). */
    private static List<Integer> runTokens() {
        StringWriter out = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(new StringWriter()));
        assertEquals(0, cl.execute("run", "--model", MODEL, "--prompt-ids", "0,818,726,297,56,207,375,667",
                "--max-tokens", "9", "--temperature", "0", "--ignore-eos", "--threads", "1"));
        return Arrays.stream(out.toString().strip().split("\\s+")).map(Integer::valueOf).toList();
    }

    /** The arguments of a process, from /proc (ProcessHandle.Info leaves out long command lines). */
    private static List<String> commandLine(ProcessHandle p) {
        try {
            return List.of(java.nio.file.Files.readString(java.nio.file.Path.of("/proc", String.valueOf(p.pid()),
                    "cmdline")).split("\u0000"));
        } catch (IOException e) {
            return List.of();
        }
    }

    private static List<ProcessHandle> children(Process cluster) {
        return cluster.toHandle().children().toList();
    }

    @Test
    void cluster_generateMatchesRun_prefixedLogs_sigtermStopsEveryChild() throws Exception {
        // A serve option in the cluster's environment must not reach the router (0 would fail its validation):
        // the cluster configures its children with flags only.
        Cluster c = start(java.util.Map.of("EXPERTMESH_MAX_RUNNING", "0"), "--workers", "2", "--cache-nodes", "1");
        List<ProcessHandle> kids = children(c.process());
        assertEquals(4, kids.size(), "a cache node, two workers and a router: " + kids);
        TokenIds.Builder ids = TokenIds.newBuilder();
        Arrays.stream(PROMPT).forEach(ids::addIds);
        GenerateResult r;
        try (ExpertMeshClient client = ExpertMeshClient.connect("127.0.0.1:" + c.port())) {
            r = client.generate(GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(9).setIgnoreEos(true)
                    .setSampling(SamplingParams.newBuilder().setTemperature(0f)).build());
        }
        List<Integer> tokens = r.tokens().stream().map(t -> t.getTokenId()).toList();
        assertEquals(runTokens(), tokens, "the cluster generates what one process runs");
        assertEquals(List.of(765, 164, 924, 360, 550, 932, 152, 385, 494), tokens, "the reference greedy tokens");
        for (String prefix : List.of("[router] ", "[worker-0] ", "[worker-1] ", "[cache-0] ")) {
            assertTrue(c.err().stream().anyMatch(l -> l.startsWith(prefix)), "lines of " + prefix + "in\n"
                    + String.join("\n", c.err()));
        }
        assertTrue(c.err().stream().anyMatch(l -> l.startsWith("[worker-1] ") && l.contains("Loaded layer")),
                "the router assigned experts to worker-1");

        c.process().toHandle().destroy(); // SIGTERM
        assertTrue(c.process().waitFor(60, TimeUnit.SECONDS), "the cluster exits on SIGTERM");
        assertEquals(143, c.process().exitValue());
        for (ProcessHandle k : kids) {
            assertTrue(k.onExit().get(10, TimeUnit.SECONDS) != null && !k.isAlive(), "child " + k.pid() + " stopped");
        }
        assertTrue(c.err().stream().anyMatch(l -> l.contains("[router]") && l.contains("Draining")),
                "the router drained first:\n" + String.join("\n", c.err()));
    }

    private static GenerateRequest referenceRequest() {
        TokenIds.Builder ids = TokenIds.newBuilder();
        Arrays.stream(PROMPT).forEach(ids::addIds);
        return GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(9).setIgnoreEos(true)
                .setSampling(SamplingParams.newBuilder().setTemperature(0f)).build();
    }

    private static Status.Code generateFails(ClientConfig config, String target) {
        try (ExpertMeshClient client = ExpertMeshClient.builder(target).config(config).build()) {
            ExpertMeshException e = assertThrows(ExpertMeshException.class,
                    () -> client.generate(referenceRequest()));
            return e.getStatus().getCode();
        }
    }

    @Test
    void cluster_tlsDirAndTokens_generateNeedsTlsAndToken_workersAllowOnlyTheRouter(@TempDir Path dir)
            throws Exception {
        TestCa ca = TestCa.create(dir, "cluster");
        TestCa.Issued router = ca.serverAndClient("router");
        TestCa.Issued worker = ca.server("worker");
        TestCa.Issued intruder = ca.client("intruder"); // the right CA, the wrong name
        Path tls = Files.createDirectory(dir.resolve("tls"));
        Files.copy(ca.certFile(), tls.resolve("ca.pem"));
        Files.copy(router.cert(), tls.resolve("router.pem"));
        Files.copy(router.key(), tls.resolve("router-key.pem"));
        Files.copy(worker.cert(), tls.resolve("worker.pem"));
        Files.copy(worker.key(), tls.resolve("worker-key.pem"));
        String token = "cluster-tls-token-0123456789abcdef";
        Path tokens = Files.write(dir.resolve("tokens.txt"), List.of(token + " generate"));

        Cluster c = start("--workers", "1", "--cache-nodes", "0", "--tls-dir", tls.toString(),
                "--auth-tokens", tokens.toString());
        String target = "127.0.0.1:" + c.port();
        ClientConfig overTls = ClientConfig.defaults().withTls(TlsFiles.client(tls.resolve("ca.pem")));

        GenerateResult r;
        try (ExpertMeshClient client = ExpertMeshClient.builder(target)
                .config(overTls.withToken(BearerToken.of(token))).build()) {
            r = client.generate(referenceRequest());
        }
        assertEquals(List.of(765, 164, 924, 360, 550, 932, 152, 385, 494),
                r.tokens().stream().map(t -> t.getTokenId()).toList(), "the reference greedy tokens over TLS");
        assertEquals(Status.Code.UNAVAILABLE, generateFails(ClientConfig.defaults(), target),
                "a plaintext client cannot talk to the TLS router");
        assertEquals(Status.Code.UNAUTHENTICATED, generateFails(overTls, target), "TLS without a token");
        assertTrue(c.out().stream().anyMatch(l -> l.contains("--tls-ca " + tls.toAbsolutePath().resolve("ca.pem"))),
                "the cluster tells clients what to pass: " + c.out());

        // The worker: plaintext refused; a certificate of the cluster CA not named "router" gets no expert RPCs.
        ProcessHandle workerProcess = children(c.process()).stream().filter(k -> commandLine(k).contains("worker"))
                .findFirst().orElseThrow();
        List<String> workerArgs = commandLine(workerProcess);
        int workerPort = Integer.parseInt(workerArgs.get(workerArgs.indexOf("--port") + 1));
        assertEquals(Status.Code.UNAVAILABLE, workerStatus(InsecureChannelCredentials.create(), workerPort));
        assertEquals(Status.Code.PERMISSION_DENIED, workerStatus(TlsCredentials.channel(
                TlsFiles.client(tls.resolve("ca.pem"), intruder.cert(), intruder.key())), workerPort));
        assertEquals(Status.Code.OK, workerStatus(TlsCredentials.channel(TlsFiles.client(tls.resolve("ca.pem"),
                tls.resolve("router.pem"), tls.resolve("router-key.pem"))), workerPort), "the router's certificate");
    }

    /** The status code of a GetWorkerStatus call to the worker on {@code port} over {@code credentials}. */
    private static Status.Code workerStatus(ChannelCredentials credentials, int port) {
        ManagedChannel ch = Grpc.newChannelBuilderForAddress("127.0.0.1", port, credentials).build();
        try {
            ExpertServiceGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .getWorkerStatus(GetWorkerStatusRequest.getDefaultInstance());
            return Status.Code.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode();
        } finally {
            ch.shutdownNow();
        }
    }

    private static List<Integer> generateTokens(int port) {
        try (ExpertMeshClient client = ExpertMeshClient.connect("127.0.0.1:" + port)) {
            return client.generate(referenceRequest()).tokens().stream().map(t -> t.getTokenId()).toList();
        }
    }

    @Test
    void cluster_workerKilled_restartedOnItsPortAndGivenExpertsAgain_generateKeepsWorking() throws Exception {
        Cluster c = start("--workers", "2", "--cache-nodes", "0");
        List<Integer> reference = List.of(765, 164, 924, 360, 550, 932, 152, 385, 494);
        assertEquals(reference, generateTokens(c.port()));
        ProcessHandle worker1 = children(c.process()).stream()
                .filter(k -> commandLine(k).contains("worker") && commandLine(k).contains("--port"))
                .reduce((a, b) -> b).orElseThrow(); // started second: worker-1
        List<String> args = commandLine(worker1);
        String port = args.get(args.indexOf("--port") + 1);
        String name = c.err().stream().anyMatch(l -> l.startsWith("[worker-1] ") && l.contains("port " + port))
                ? "worker-1" : "worker-0";
        int linesBefore = c.err().size();
        worker1.destroyForcibly(); // SIGKILL
        org.awaitility.Awaitility.await("the restart notice").atMost(Duration.ofSeconds(60)).until(() -> c.err()
                .stream().anyMatch(l -> l.startsWith("expertmesh cluster: " + name + " exited unexpectedly (exit code "
                        + "137); restarting it in 1000 ms")));
        // While it is down or coming back, the router serves from the other worker.
        assertEquals(reference, generateTokens(c.port()), "generate succeeds with a worker down");
        org.awaitility.Awaitility.await("a new " + name + " on port " + port).atMost(Duration.ofSeconds(120))
                .until(() -> children(c.process()).stream().anyMatch(k -> k.pid() != worker1.pid()
                        && commandLine(k).contains(port)));
        org.awaitility.Awaitility.await("the restarted " + name + " loads experts").atMost(Duration.ofSeconds(120))
                .until(() -> c.err().stream().skip(linesBefore)
                        .anyMatch(l -> l.startsWith("[" + name + "] ") && l.contains("Loaded layer")));
        assertEquals(reference, generateTokens(c.port()), "generate succeeds with the worker back");
        assertTrue(c.process().isAlive(), "the cluster carries on");
    }

    @Test
    void cluster_workerKilledWithNoRestarts_othersStoppedAndExitNamesIt() throws Exception {
        Cluster c = start("--workers", "1", "--cache-nodes", "0", "--max-restarts", "0");
        List<ProcessHandle> kids = children(c.process());
        assertEquals(2, kids.size(), "a worker and a router: " + kids);
        ProcessHandle worker = kids.stream().filter(k -> commandLine(k).contains("worker")).findFirst()
                .orElseThrow(() -> new AssertionError("no worker among " + kids));
        worker.destroyForcibly(); // SIGKILL
        assertTrue(c.process().waitFor(60, TimeUnit.SECONDS), "the cluster exits when a child dies, given no restarts");
        assertEquals(1, c.process().exitValue());
        for (ProcessHandle k : kids) {
            k.onExit().get(10, TimeUnit.SECONDS);
        }
        assertTrue(c.err().stream().anyMatch(l -> l.contains("worker-0 exited unexpectedly (exit code 137)")),
                String.join("\n", c.err()));
    }
}
