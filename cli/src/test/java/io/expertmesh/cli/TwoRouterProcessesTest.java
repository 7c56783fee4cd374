package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.client.GenerateResult;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.proto.inference.v1.DistributedKvStatus;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two routers in separate OS processes ({@code expertmesh serve --kv-store embedded}) forming one Hazelcast
 * cluster: a 1,024-token prefix computed by router A is served from the store by router B, with output identical
 * (tokens and logprobs, seeded sampling) to a cold run on a third router without the tier.
 */
class TwoRouterProcessesTest {
    private static final int PREFIX = 1024;
    private static final Pattern SERVING = Pattern.compile("expertmesh serving .* on port (\\d+)");

    @TempDir
    Path tmp;

    /** A started {@code serve} process, its gRPC port and its output so far. */
    private record Router(String name, Process process, int port, List<String> output) {
    }

    private final List<Process> processes = new ArrayList<>();

    /** The router model of the router tests: DeepSeek-V3 architecture, real tokenizer, 4,096-token context. */
    private static Path model(Path dir) throws IOException {
        ObjectNode c = SyntheticModels.randomConfig();
        c.put("hidden_size", 128).put("intermediate_size", 256).put("moe_intermediate_size", 64)
                .put("num_hidden_layers", 3).put("num_attention_heads", 4).put("num_key_value_heads", 4)
                .put("kv_lora_rank", 64).put("q_lora_rank", 96).put("qk_rope_head_dim", 16).put("v_head_dim", 32)
                .put("qk_nope_head_dim", 32).put("n_routed_experts", 8).put("n_group", 2).put("topk_group", 1)
                .put("num_experts_per_tok", 2).put("max_position_embeddings", 4096);
        ((ObjectNode) c.get("rope_scaling")).put("original_max_position_embeddings", 1024);
        SyntheticModels.writeModelWithTokenizer(c, 99, dir);
        return dir;
    }

    private CompletableFuture<Router> launch(String name, Path model, List<String> kvArgs) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElseThrow());
        cmd.addAll(ChildProcesses.JVM_FLAGS);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "io.expertmesh.cli.Main", "serve",
                "--model", model.toString(), "--port", "0", "--threads", "2", "--kv-cache-mb", "64",
                "--kv-block-size", "16", "--max-batched-tokens", "1024"));
        cmd.addAll(kvArgs);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        processes.add(p);
        List<String> output = new CopyOnWriteArrayList<>();
        CompletableFuture<Router> started = new CompletableFuture<>();
        Thread.ofPlatform().daemon().name("router-" + name + "-output").start(() -> {
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) {
                    output.add(line);
                    Matcher m = SERVING.matcher(line);
                    if (m.find()) {
                        started.complete(new Router(name, p, Integer.parseInt(m.group(1)), output));
                    }
                }
            } catch (IOException e) {
                // the process went away; reported below
            }
            String exit;
            try {
                exit = p.waitFor(10, TimeUnit.SECONDS) ? "exit " + p.exitValue() : "still running";
            } catch (InterruptedException e) {
                exit = "interrupted";
            }
            started.completeExceptionally(new AssertionError("router " + name + " ended its output before serving ("
                    + exit + "):\n" + String.join("\n", output)));
        });
        return started;
    }

    private static int[] randomPrefix(long seed) {
        Random rnd = new Random(seed);
        int[] prefix = new int[PREFIX];
        prefix[0] = 0;
        for (int i = 1; i < prefix.length; i++) {
            prefix[i] = 2 + rnd.nextInt(120000);
        }
        return prefix;
    }

    private static GenerateRequest request(int[] prefix, int... suffix) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (int t : prefix) {
            ids.addIds(t);
        }
        for (int t : suffix) {
            ids.addIds(t);
        }
        return GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(8).setIgnoreEos(true).setLogprobs(true)
                .setTopLogprobs(3).setSampling(SamplingParams.newBuilder().setTemperature(0.7f).setSeed(42)).build();
    }

    private static void awaitPublished(ExpertMeshClient c, long atLeast) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            DistributedKvStatus s = c.status().getKvStore();
            if (s.getPublished() >= atLeast && s.getPublished() + s.getPublishErrors() >= s.getPublishes()) {
                return;
            }
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + atLeast + " blocks published: " + s);
            }
            Thread.sleep(20);
        }
    }

    private static double ttft(GenerateResult r) {
        return r.usage().getTimeToFirstTokenMs();
    }

    @Test
    void serve_twoRouterProcessesSharingOneCluster_prefixFromAServedOnBFromStore() throws Exception {
        Path model = model(tmp.resolve("model"));
        int kvA = freePort();
        int kvB = freePort();
        String members = "127.0.0.1:" + kvA + ",127.0.0.1:" + kvB;
        String cluster = "two-router-processes-" + UUID.randomUUID();
        try {
            CompletableFuture<Router> fa = launch("A", model, List.of("--kv-store", "embedded", "--kv-port",
                    String.valueOf(kvA), "--kv-members", members, "--kv-cluster-name", cluster));
            CompletableFuture<Router> fb = launch("B", model, List.of("--kv-store", "embedded", "--kv-port",
                    String.valueOf(kvB), "--kv-members", members, "--kv-cluster-name", cluster));
            CompletableFuture<Router> fc = launch("C", model, List.of("--kv-store", "none"));
            Router a = fa.get(60, TimeUnit.SECONDS);
            Router b = fb.get(60, TimeUnit.SECONDS);
            Router c = fc.get(60, TimeUnit.SECONDS);
            int[] prefix = randomPrefix(5);
            GenerateRequest onA = request(prefix, 11, 12, 13);
            GenerateRequest onB = request(prefix, 21, 22, 23, 24);
            try (ExpertMeshClient ca = ExpertMeshClient.connect("127.0.0.1:" + a.port());
                 ExpertMeshClient cb = ExpertMeshClient.connect("127.0.0.1:" + b.port());
                 ExpertMeshClient cc = ExpertMeshClient.connect("127.0.0.1:" + c.port())) {
                // Warm up the JIT (and the store's paths) on unrelated prefixes; C gets as many prefills as B.
                ca.generate(request(randomPrefix(100), 1));
                cb.generate(request(randomPrefix(101), 1));
                cc.generate(request(randomPrefix(101), 1));
                cc.generate(request(randomPrefix(100), 2));
                awaitPublished(ca, PREFIX / 16);
                GenerateResult warm = cb.generate(request(randomPrefix(100), 2));
                assertTrue(warm.usage().getCachedPromptTokens() >= 960, "warm-up from the store on B: "
                        + warm.usage() + "\nA:\n" + String.join("\n", a.output()) + "\nB:\n"
                        + String.join("\n", b.output()));

                GenerateResult coldA = ca.generate(onA);
                assertEquals(0, coldA.usage().getCachedPromptTokens(), "a cold run on A");
                awaitPublished(ca, 2 * PREFIX / 16);

                GenerateResult reference = cc.generate(onB);
                assertEquals(0, reference.usage().getCachedPromptTokens(), "a cold run on C (no store)");
                GenerateResult fromStore = cb.generate(onB);
                int cached = fromStore.usage().getCachedPromptTokens();
                assertTrue(cached >= 960, "cached prompt tokens on B " + cached);
                assertEquals(reference.tokens(), fromStore.tokens(),
                        "output identical to the cold run, tokens and logprobs");
                assertEquals(8, fromStore.tokens().size());
                DistributedKvStatus kb = cb.status().getKvStore();
                assertTrue(kb.getHitTokens() >= 2 * 960L && kb.getBytesIn() > 0, kb.toString());
                // Informational only: on a loaded 2-core machine the store's TTFT can exceed the cold one; the
                // cached tokens and equal output above are what the tier promises.
                System.out.printf("two router processes: TTFT cold on A %.1f ms, cold on C (no store) %.1f ms, "
                        + "from the store on B %.1f ms (%d cached tokens; %d prompt tokens)%n", ttft(coldA),
                        ttft(reference), ttft(fromStore), cached, fromStore.usage().getPromptTokens());
            }
        } finally {
            for (Process p : processes) {
                p.destroy();
            }
            for (Process p : processes) {
                if (!p.waitFor(5, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(5, TimeUnit.SECONDS);
                }
            }
        }
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
