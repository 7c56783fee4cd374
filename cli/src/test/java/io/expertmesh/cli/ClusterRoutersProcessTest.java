package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.cli.cluster.JavaCommand;
import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.cluster.v1.ClusterStatus;
import io.expertmesh.proto.cluster.v1.GetClusterStatusRequest;
import io.expertmesh.proto.cluster.v1.RebalanceRequest;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code expertmesh cluster --routers 2} as a real process tree: two routers sharing one expert placement through
 * the cache node, their ready line naming both. Each generates the greedy tokens of {@code run}; both report one
 * placement epoch, also after a rebalance asked of one of them; SIGTERM stops every child.
 */
class ClusterRoutersProcessTest {
    private static final String MODEL = "../core/src/test/resources/fixtures/deepseek-v3-tiny/f32";
    private static final Pattern SERVING = Pattern.compile(
            "^expertmesh cluster serving f32 on (127\\.0\\.0\\.1:\\d+),(127\\.0\\.0\\.1:\\d+) \\(2 workers, 2 routers\\)$");
    /** {@code expertmesh run}'s greedy tokens for this prompt (ClusterCommandProcessTest checks them against run). */
    private static final List<Integer> REFERENCE = List.of(765, 164, 924, 360, 550, 932, 152, 385, 494);

    private final List<Process> started = new ArrayList<>();

    @AfterEach
    void tearDown() throws InterruptedException {
        for (Process p : started) {
            List<ProcessHandle> tree = p.descendants().toList();
            p.destroyForcibly();
            tree.forEach(ProcessHandle::destroyForcibly);
            p.waitFor(10, TimeUnit.SECONDS);
        }
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

    private static List<Integer> generate(String... targets) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        Arrays.stream(new int[]{0, 818, 726, 297, 56, 207, 375, 667}).forEach(ids::addIds);
        try (ExpertMeshClient client = ExpertMeshClient.builder(List.of(targets)).build()) {
            return client.generate(GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(9).setIgnoreEos(true)
                    .setSampling(SamplingParams.newBuilder().setTemperature(0f)).build())
                    .tokens().stream().map(t -> t.getTokenId()).toList();
        }
    }

    private static ClusterStatus status(String target, boolean rebalance) {
        ManagedChannel ch = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
        try {
            var stub = ClusterServiceGrpc.newBlockingStub(ch).withDeadlineAfter(60, TimeUnit.SECONDS);
            return rebalance ? stub.rebalance(RebalanceRequest.getDefaultInstance())
                    : stub.getClusterStatus(GetClusterStatusRequest.getDefaultInstance());
        } finally {
            ch.shutdownNow();
        }
    }

    @Test
    void twoRouters_readyLineNamesBoth_eachGeneratesRunsTokens_onePlacement() throws Exception {
        List<String> args = new ArrayList<>(List.of("cluster", "--model", MODEL, "--port", "0", "--threads", "1",
                "--drain-grace-seconds", "5", "--startup-timeout-seconds", "120", "--routers", "2", "--workers", "2",
                "--cache-nodes", "1"));
        Process p = new ProcessBuilder(JavaCommand.of(Main.class.getName(), args)).start();
        started.add(p);
        List<String> err = new CopyOnWriteArrayList<>();
        CompletableFuture<List<String>> targets = new CompletableFuture<>();
        collect(p.getInputStream(), new CopyOnWriteArrayList<>(), line -> {
            Matcher m = SERVING.matcher(line);
            if (m.matches()) {
                targets.complete(List.of(m.group(1), m.group(2)));
            }
        });
        collect(p.getErrorStream(), err, line -> { });
        p.onExit().thenRun(() -> targets.completeExceptionally(new AssertionError("cluster exited ("
                + p.exitValue() + ") before serving:\n" + String.join("\n", err))));
        List<String> routers = targets.get(240, TimeUnit.SECONDS);
        List<ProcessHandle> kids = p.toHandle().children().toList();
        assertEquals(5, kids.size(), "a cache node, two workers and two routers: " + kids);

        for (String r : routers) {
            assertEquals(REFERENCE, generate(r), "router " + r + " generates what one process runs");
        }
        ClusterStatus a = status(routers.get(0), false);
        ClusterStatus b = status(routers.get(1), false);
        assertEquals(a.getEpoch(), b.getEpoch(), "one placement");
        assertEquals(a.getWorkersList().stream().map(w -> w.getAddress() + w.getExpertsList()).toList(),
                b.getWorkersList().stream().map(w -> w.getAddress() + w.getExpertsList()).toList());

        long moved = status(routers.get(1), true).getEpoch();
        assertTrue(moved > a.getEpoch(), "the rebalance asked of router 1 made a new plan");
        Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> status(routers.get(0), false).getEpoch() == moved);
        assertEquals(REFERENCE, generate(routers.get(0)), "router 0 serves by the new plan");
        assertEquals(REFERENCE, generate(routers.toArray(String[]::new)), "a client given both routers");
        for (String prefix : List.of("[router-0] ", "[router-1] ")) {
            assertTrue(err.stream().anyMatch(l -> l.startsWith(prefix) && l.contains("Expert placement shared")),
                    prefix + "shares the placement:\n" + String.join("\n", err));
        }

        p.toHandle().destroy(); // SIGTERM
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the cluster exits on SIGTERM");
        assertEquals(143, p.exitValue());
        for (ProcessHandle k : kids) {
            assertTrue(k.onExit().get(10, TimeUnit.SECONDS) != null && !k.isAlive(), "child " + k.pid() + " stopped");
        }
    }
}
