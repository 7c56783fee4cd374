package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.client.GenerateResult;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The cluster as separate OS processes over real sockets: expert workers ({@code worker --experts none}) and a
 * router ({@code serve --workers …}). With 1, 2 and 3 workers {@code generate --json} reproduces the
 * single-process {@code run --json} exactly; under 64 concurrent requests, {@code kill -9} of a worker fails no
 * request and changes no output.
 */
class DistributedProcessesTest {
    static final Path FIXTURE = RunCommandTest.FIXTURE;
    static final String PROMPT = "0,818,726,297,56,207,375,667";

    static List<String> worker() {
        return worker(FIXTURE);
    }

    static List<String> worker(Path model) {
        return List.of("worker", "--model", model.toString(), "--port", "0", "--experts", "none", "--threads", "1");
    }

    static List<String> router(List<String> workers, String... extra) {
        return router(FIXTURE, workers, extra);
    }

    static List<String> router(Path model, List<String> workers, String... extra) {
        List<String> a = new ArrayList<>(List.of("serve", "--model", model.toString(), "--port", "0",
                "--threads", "1", "--kv-store", "none", "--kv-cache-mb", "32", "--workers", String.join(",", workers)));
        a.addAll(List.of(extra));
        return a;
    }

    @Test
    void oneTwoAndThreeWorkerProcesses_generateReproducesRunExactly() throws Exception {
        String[] greedy = {"--prompt-ids", PROMPT, "--max-tokens", "9", "--temperature", "0", "--top-logprobs", "5",
            "--ignore-eos", "--json"};
        String[] sampled = {"--prompt-ids", PROMPT, "--max-tokens", "12", "--temperature", "0.9", "--top-p", "0.9",
            "--seed", "77", "--ignore-eos", "--json"};
        assertDistributedEqualsRun(FIXTURE, List.of(greedy, sampled));
    }

    /** The benchmark model of {@code bench-model} (BF16, hidden 1024, 8 layers, 16 experts top-4; cached). */
    @Test
    void benchmarkModel_oneTwoAndThreeWorkerProcesses_generateReproducesRunExactly() throws Exception {
        Path bench = io.expertmesh.core.synthetic.SyntheticModels.ensureBenchModel(
                io.expertmesh.core.synthetic.SyntheticModels.defaultCacheRoot());
        String[] greedy = {"--prompt-ids", "0,17,4242,31000,9,123,777,20000,5,8", "--max-tokens", "6",
            "--temperature", "0", "--top-logprobs", "3", "--ignore-eos", "--json"};
        assertDistributedEqualsRun(bench, List.<String[]>of(greedy));
    }

    private static void assertDistributedEqualsRun(Path model, List<String[]> cases) throws Exception {
        List<List<String>> expected = new ArrayList<>();
        for (String[] s : cases) {
            List<String> args = new ArrayList<>(List.of("run", "--model", model.toString(), "--threads", "1"));
            args.addAll(List.of(s));
            RunCommandTest.Run run = RunCommandTest.run(args.toArray(String[]::new));
            assertEquals(0, run.exit(), run.err());
            expected.add(ServeGenerateTest.comparable(run.out()));
        }
        try (ChildProcesses procs = new ChildProcesses()) {
            List<String> workers = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                workers.add(procs.start("worker-" + i, worker(model)).address());
            }
            for (int n = 1; n <= 3; n++) {
                ChildProcesses.Child router = procs.start("router-" + n, router(model, workers.subList(0, n)));
                for (int k = 0; k < cases.size(); k++) {
                    List<String> args = new ArrayList<>(List.of("generate", "--target", router.address()));
                    args.addAll(List.of(cases.get(k)));
                    RunCommandTest.Run gen = RunCommandTest.run(args.toArray(String[]::new));
                    assertEquals(0, gen.exit(), gen.err() + "\n" + String.join("\n", router.output()));
                    assertEquals(expected.get(k), ServeGenerateTest.comparable(gen.out()), n + " worker(s)");
                }
                router.process().destroy();
                assertTrue(router.process().waitFor(30, TimeUnit.SECONDS));
            }
        }
    }

    static List<GenerateRequest> load(int count) {
        Random rnd = new Random(3);
        List<GenerateRequest> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            TokenIds.Builder ids = TokenIds.newBuilder();
            int len = 1 + rnd.nextInt(40);
            for (int j = 0; j < len; j++) {
                ids.addIds(rnd.nextInt(1024));
            }
            out.add(GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(16 + rnd.nextInt(16))
                    .setIgnoreEos(true).setLogprobs(true).setTopLogprobs(2)
                    .setSampling(SamplingParams.newBuilder().setTemperature(0.8f).setSeed(rnd.nextLong())).build());
        }
        return out;
    }

    static List<GenerateResult> runAll(ExpertMeshClient client, List<GenerateRequest> reqs, Runnable during)
            throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(reqs.size())) {
            List<CompletableFuture<GenerateResult>> fs = new ArrayList<>();
            for (GenerateRequest q : reqs) {
                fs.add(CompletableFuture.supplyAsync(() -> client.generate(q), pool));
            }
            while (client.status().getGeneratedTokens() < 64) {
                Thread.sleep(10);
            }
            during.run();
            List<GenerateResult> out = new ArrayList<>();
            for (CompletableFuture<GenerateResult> f : fs) {
                out.add(f.get(300, TimeUnit.SECONDS));
            }
            return out;
        }
    }

    @Test
    void kill9OfAWorker_under64ConcurrentRequests_noFailureAndSameOutputs() throws Exception {
        List<GenerateRequest> reqs = load(64);
        for (int redundant : new int[]{8, 0}) {
            try (ChildProcesses procs = new ChildProcesses()) {
                List<ChildProcesses.Child> workers = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    workers.add(procs.start("worker-" + i, worker()));
                }
                ChildProcesses.Child router = procs.start("router", router(
                        workers.stream().map(ChildProcesses.Child::address).toList(), "--redundant-experts",
                        String.valueOf(redundant), "--max-running", "64"));
                try (ExpertMeshClient client = ExpertMeshClient.connect(router.address())) {
                    List<GenerateResult> before = runAll(client, reqs, () -> { });
                    long generated = client.status().getGeneratedTokens();
                    List<GenerateResult> during = runAll(client, reqs, () -> {
                        while (client.status().getGeneratedTokens() < generated + 200) {
                            Thread.onSpinWait();
                        }
                        workers.get(1).process().destroyForcibly(); // SIGKILL
                    });
                    assertTrue(workers.get(1).process().waitFor(10, TimeUnit.SECONDS));
                    for (int i = 0; i < reqs.size(); i++) {
                        assertEquals(before.get(i).tokens(), during.get(i).tokens(),
                                "request " + i + " with " + redundant + " redundant experts");
                    }
                    assertTrue(String.join("\n", router.output()).contains("is out"),
                            "the router noticed the kill:\n" + String.join("\n", router.output()));
                }
            }
        }
    }
}
