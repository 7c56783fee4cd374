package io.expertmesh.bench.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineOptions;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.engine.SequenceListener;
import io.expertmesh.router.experts.ClusterStatus;
import io.expertmesh.router.experts.DispatchObserver;
import io.expertmesh.router.experts.ExpertCluster;
import io.expertmesh.router.experts.ExpertClusterConfig;
import io.expertmesh.router.experts.WireFormat;
import io.expertmesh.router.experts.WorkerChannels;
import io.expertmesh.worker.ExpertSelection;
import io.expertmesh.worker.ExpertWorkerServer;
import io.expertmesh.worker.WorkerConfig;
import io.grpc.InsecureChannelCredentials;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Expert parallelism on the benchmark model, side by side in one run: aggregate decode through the router's
 * engine with the experts in process, and on N expert workers over loopback sockets (in this JVM, each with its
 * own compute threads) with one micro-batch per step, two, and two where the engine measures that they pay (its
 * {@link io.expertmesh.router.engine.SplitChooser}); the per-layer dispatch latency; that
 * greedy tokens are the same everywhere; and the per-worker load imbalance of a skewed workload before and after
 * a rebalance.
 */
public final class DistributedBench {
    /** How a remote engine splits its steps: the label, the JSON/map key part, the cluster's micro-batch count. */
    private enum Split {
        ONE("1 micro-batch", "1", 1), TWO("2 micro-batches", "2", 2), AUTO("2 where they pay", "auto", 2);

        final String label;
        final String key;
        final int clusterMicroBatches;

        Split(String label, String key, int clusterMicroBatches) {
            this.label = label;
            this.key = key;
            this.clusterMicroBatches = clusterMicroBatches;
        }

        Engine.MicroBatching engineOption(ExpertCluster cluster) {
            return switch (this) {
                case ONE -> null;
                case TWO -> Engine.MicroBatching.always(cluster.computeLock());
                case AUTO -> new Engine.MicroBatching(cluster.computeLock());
            };
        }
    }

    private DistributedBench() {
    }

    public static void run(ModelSetup options, List<Integer> streams, int prompt, int tokens, int workerCount,
                    int skewWorkers, WireFormat wire, long delayNanos, int rounds, double warmUpSeconds,
                    ObjectNode result, PrintStream err) throws Exception {
        // --model: a real model (the trained default shows real gate skew); else the llama.cpp comparison shape
        Path dir = options.model() != null ? options.model() : SyntheticModels.ensureBenchModel(SyntheticModels.defaultCacheRoot());
        ModelConfig config = ModelConfig.load(dir);
        int maxStreams = streams.stream().max(Integer::compare).orElse(1);
        // 512 MiB of KV each: the in-process engine stays open beside each remote one (the rounds alternate)
        EngineConfig engineConfig = new EngineConfig(16, 512L << 20, Math.max(512, maxStreams * prompt), maxStreams,
                maxStreams * 2, false);
        ObjectNode out = result.putObject("expert_parallel");
        out.put("added_latency_ms_each_way", delayNanos / 1e6);
        if (delayNanos > 0) {
            err.printf("added latency: %.3f ms each way on every call to a worker%n", delayNanos / 1e6);
        }
        List<ExpertWorkerServer> workers = new ArrayList<>();
        AddedLatency latency = new AddedLatency(delayNanos);
        WorkerChannels channels = delayNanos > 0
                ? new WorkerChannels(InsecureChannelCredentials.create(), List.of(latency))
                : WorkerChannels.plaintext();
        try {
            List<String> addresses = startWorkers(options, dir, workerCount, workers);
            // --device cuda: routers on the device pass, workers' experts in device memory.
            try (LoadedModel local = LoadedModel.open(dir, options.newCpuKernels(), (a, b) -> { }, null,
                    options.quantization());
                 Engine engine = new Engine(local, engineConfig, EngineOptions.DEFAULT
                         .withBackend(options.forwardBackend()))) {
                List<Integer> reference = greedy(engine, prompt);
                EngineBench.warmUp(engine, prompt, warmUpSeconds, new java.util.SplittableRandom(5));
                // In process, 1, 2 and auto micro-batches measured in turn, round after round, the best of each kept:
                // on a shared machine the order of runs (JIT warm-up, other load) would otherwise decide.
                java.util.Map<String, java.util.Map<Integer, Double>> best = new java.util.TreeMap<>();
                for (int round = 1; round <= rounds; round++) {
                    for (int n : streams) {
                        double tps = EngineBench.measure(engine, n, prompt, tokens, new java.util.SplittableRandom(n));
                        err.printf("round %d: in process,            %2d streams: %8.1f tokens/s aggregate%n", round, n,
                                tps);
                        best.computeIfAbsent("in_process", k -> new java.util.TreeMap<>()).merge(n, tps, Math::max);
                    }
                    for (Split micro : Split.values()) {
                        remote(options, dir, config, engineConfig, addresses, channels, wire, micro, streams, prompt,
                                tokens, round, round == 1 ? reference : null, warmUpSeconds, best, out, err);
                    }
                }
                err.printf("best of %d round(s), tokens/s aggregate (remote / in process):%n", rounds);
                for (int n : streams) {
                    double in = best.get("in_process").get(n);
                    double m1 = best.get("micro_1").get(n);
                    double m2 = best.get("micro_2").get(n);
                    double auto = best.get("micro_auto").get(n);
                    err.printf("  %2d streams: in process %8.1f; %d workers, 1 micro-batch %8.1f (%.2fx); "
                            + "2 micro-batches %8.1f (%.2fx); 2 vs 1 micro-batches %.2fx; "
                            + "2 where they pay %8.1f (%.2fx, %.2fx of the better of 1 and 2)%n", n, in, workerCount,
                            m1, m1 / in, m2, m2 / in, m2 / m1, auto, auto / in, auto / Math.max(m1, m2));
                    out.with("in_process").put(Integer.toString(n), in);
                    for (Split micro : Split.values()) {
                        ((ObjectNode) out.with(workerCount + "_workers_" + micro.key + "_micro_batches")
                                .get(Integer.toString(n))).put("tokens_per_s", best.get("micro_" + micro.key).get(n));
                    }
                }
            }
            transportFloor(options, dir, config, engineConfig, streams, prompt, tokens, workerCount, wire, channels,
                    warmUpSeconds, out, err);
        } finally {
            for (ExpertWorkerServer w : workers) {
                w.close();
            }
            latency.close();
        }
        if (delayNanos > 0) {
            return; // the rebalance test below measures placement, not latency
        }
        // Its own step budget: 32 streams whatever --batches was.
        EngineConfig skewConfig = new EngineConfig(16, 2L << 30, Math.max(512, 32 * prompt), 32, 64, false);
        skew(options, dir, config, skewConfig, skewWorkers, wire, prompt, out, err);
    }

    /**
     * One round of {@code micro} micro-batches on the workers at {@code addresses}: greedy tokens checked against
     * {@code reference} (when given), a warm-up of {@code warmUpSeconds} (as the in-process engine gets: the JIT
     * compiles the transport's code only after thousands of calls), then each stream count measured, with the
     * dispatch times of that measurement alone ({@link DispatchWindow}).
     */
    private static void remote(ModelSetup options, Path dir, ModelConfig config, EngineConfig engineConfig,
                               List<String> addresses, WorkerChannels channels, WireFormat wire, Split micro,
                               List<Integer> streams, int prompt, int tokens, int round, List<Integer> reference,
                               double warmUpSeconds, java.util.Map<String, java.util.Map<Integer, Double>> best,
                               ObjectNode out, PrintStream err) throws Exception {
        dropClosedEngines();
        int workerCount = addresses.size();
        ExpertClusterConfig cc = ExpertClusterConfig.of(addresses, 0).withWire(wire)
                .withMicroBatches(micro.clusterMicroBatches);
        DispatchWindow window = new DispatchWindow();
        try (ExpertCluster cluster = new ExpertCluster(config, cc, channels, window)) {
            cluster.start();
            try (LoadedModel m = LoadedModel.open(dir, options.newCpuKernels(), (a, b) -> { },
                    cluster.routedExperts(), options.quantization());
                 Engine engine = new Engine(m, engineConfig, EngineOptions.DEFAULT
                         .withMicroBatching(micro.engineOption(cluster))
                         .withBackend(options.forwardBackend()))) {
                if (reference != null) {
                    boolean same = greedy(engine, prompt).equals(reference);
                    err.printf("%d workers, %s: greedy tokens %s the in-process run%n",
                            workerCount, micro.label, same ? "equal" : "DIFFER FROM");
                    out.put("greedy_tokens_equal_" + micro.key, same);
                }
                EngineBench.warmUp(engine, prompt, warmUpSeconds, new java.util.SplittableRandom(5));
                String key = workerCount + "_workers_" + micro.key + "_micro_batches";
                for (int n : streams) {
                    window.open();
                    double tps = EngineBench.measure(engine, n, prompt, tokens, new java.util.SplittableRandom(n));
                    DispatchWindow.Times d = window.close();
                    best.computeIfAbsent("micro_" + micro.key, k -> new java.util.TreeMap<>()).merge(n, tps, Math::max);
                    err.printf("round %d: %d workers, %s, %2d streams: %8.1f tokens/s aggregate; per-layer "
                            + "dispatch p50 %.2f ms, p99 %.2f ms; per call p50/p99: worker queue %.3f/%.3f ms, "
                            + "compute %.3f/%.3f ms, overhead %.3f/%.3f ms (%d calls, this measurement)%n", round,
                            workerCount, micro.label, n, tps, d.layerP50(), d.layerP99(), d.queueP50(), d.queueP99(),
                            d.computeP50(), d.computeP99(), d.overheadP50(), d.overheadP99(), d.calls());
                    ObjectNode r = out.with(key).putObject(Integer.toString(n));
                    r.put("tokens_per_s", tps).put("dispatch_p50_ms", d.layerP50()).put("dispatch_p99_ms", d.layerP99())
                            .put("queue_p50_ms", d.queueP50()).put("queue_p99_ms", d.queueP99())
                            .put("compute_p50_ms", d.computeP50()).put("compute_p99_ms", d.computeP99())
                            .put("overhead_p50_ms", d.overheadP50()).put("overhead_p99_ms", d.overheadP99());
                }
            }
        }
    }

    /**
     * A full collection before each remote configuration (outside the timed runs): an earlier configuration's
     * engine is closed, but its 512 MiB KV pool stays in the old generation until a full collection, and with
     * several there (a 6 GB old generation, 99% full) young collections took 30-50 ms, which the next
     * configuration's tokens/s and p99s then paid for.
     */
    private static void dropClosedEngines() {
        System.gc();
    }

    /**
     * The transport floor: the same dispatches to workers whose experts return at once (outputs are zeros, so the
     * tokens mean nothing): what remains is serialization, transport and wake-ups, with the breakdown per call.
     * Warmed up and windowed as {@link #remote}.
     */
    private static void transportFloor(ModelSetup options, Path dir, ModelConfig config, EngineConfig engineConfig,
                                       List<Integer> streams, int prompt, int tokens, int workerCount,
                                       WireFormat wire, WorkerChannels channels, double warmUpSeconds,
                                       ObjectNode out, PrintStream err) throws Exception {
        dropClosedEngines();
        List<ExpertWorkerServer> workers = new ArrayList<>();
        ExpertRunner.Factory skip = (layer, experts, hidden) -> (xn, n, offsets, ids, weights, o, ctx) -> { };
        try {
            List<String> addresses = startWorkers(options, dir, workerCount, workers, skip);
            ExpertClusterConfig cc = ExpertClusterConfig.of(addresses, 0).withWire(wire).withMicroBatches(1);
            DispatchWindow window = new DispatchWindow();
            try (ExpertCluster cluster = new ExpertCluster(config, cc, channels, window)) {
                cluster.start();
                try (LoadedModel m = LoadedModel.open(dir, options.newCpuKernels(), (a, b) -> { },
                        cluster.routedExperts());
                     Engine engine = new Engine(m, engineConfig, EngineOptions.DEFAULT
                             .withBackend(options.forwardBackend()))) {
                    EngineBench.warmUp(engine, prompt, warmUpSeconds, new java.util.SplittableRandom(5));
                    for (int n : streams) {
                        window.open();
                        double tps = EngineBench.measure(engine, n, prompt, tokens,
                                new java.util.SplittableRandom(n));
                        DispatchWindow.Times d = window.close();
                        err.printf("transport floor (workers skip the experts), %2d streams: %8.1f tokens/s; per "
                                + "call p50/p99 overhead %.3f/%.3f ms, worker queue %.3f/%.3f ms (%d calls, this "
                                + "measurement)%n", n, tps, d.overheadP50(), d.overheadP99(), d.queueP50(),
                                d.queueP99(), d.calls());
                        out.with("transport_floor").putObject(Integer.toString(n)).put("tokens_per_s", tps)
                                .put("overhead_p50_ms", d.overheadP50()).put("overhead_p99_ms", d.overheadP99());
                    }
                }
            }
        } finally {
            for (ExpertWorkerServer w : workers) {
                w.close();
            }
        }
    }

    /** Starts {@code count} workers holding nothing on loopback (added to {@code started}); their addresses. */
    private static List<String> startWorkers(ModelSetup options, Path dir, int count,
                                             List<ExpertWorkerServer> started) throws Exception {
        return startWorkers(options, dir, count, started, options.expertRunners());
    }

    private static List<String> startWorkers(ModelSetup options, Path dir, int count,
                                             List<ExpertWorkerServer> started, ExpertRunner.Factory runners)
            throws Exception {
        for (int i = 0; i < count; i++) {
            ExpertWorkerServer w = new ExpertWorkerServer(new WorkerConfig(dir, 0, ExpertSelection.NONE),
                    options.newCpuKernels()).expertRunners(runners).start();
            started.add(w);
            w.awaitLoaded();
        }
        return started.stream().map(w -> "127.0.0.1:" + w.port()).toList();
    }

    /**
     * A skewed workload: 32 greedy streams of only 2 distinct prompts, so each step routes to few experts; measured
     * on its own workers (more workers, fewer experts each: the skew shows per worker) before and after a
     * rebalance with 4 extra copies per layer.
     */
    private static void skew(ModelSetup options, Path dir, ModelConfig config, EngineConfig engineConfig,
                             int workerCount, WireFormat wire, int prompt, ObjectNode out, PrintStream err)
            throws Exception {
        List<ExpertWorkerServer> workers = new ArrayList<>();
        try {
            skew(options, dir, config, engineConfig, startWorkers(options, dir, workerCount, workers), wire, prompt,
                    out, err);
        } finally {
            for (ExpertWorkerServer w : workers) {
                w.close();
            }
        }
    }

    private static void skew(ModelSetup options, Path dir, ModelConfig config, EngineConfig engineConfig,
                             List<String> addresses, WireFormat wire, int prompt, ObjectNode out, PrintStream err)
            throws Exception {
        ExpertClusterConfig cc = ExpertClusterConfig.of(addresses, 4).withWire(wire);
        try (ExpertCluster cluster = new ExpertCluster(config, cc, WorkerChannels.plaintext(), DispatchObserver.NONE)) {
            cluster.start();
            try (LoadedModel m = LoadedModel.open(dir, options.newCpuKernels(), (a, b) -> { },
                    cluster.routedExperts(), options.quantization());
                 Engine engine = new Engine(m, engineConfig, EngineOptions.DEFAULT
                         .withMicroBatching(new Engine.MicroBatching(cluster.computeLock()))
                         .withBackend(options.forwardBackend()))) {
                int[][] prompts = skewPrompts(m, engine, prompt);
                skewedLoad(engine, prompts);
                double before = meanWorkerImbalance(cluster.status());
                double expertImbalance = cluster.status().layers().stream()
                        .mapToDouble(ClusterStatus.Layer::expertImbalance).average().orElse(0);
                cluster.rebalance();
                skewedLoad(engine, prompts);
                double after = meanWorkerImbalance(cluster.status());
                err.printf("skewed workload on %d workers (per-expert imbalance %.2f): per-worker load imbalance "
                        + "(max/mean, mean over layers) %.3f before, %.3f after rebalancing with 4 extra copies per "
                        + "layer%n", addresses.size(), expertImbalance, before, after);
                out.put("skew_expert_imbalance", expertImbalance).put("skew_worker_imbalance_before", before)
                        .put("skew_worker_imbalance_after", after);
            }
        }
    }

    private static double meanWorkerImbalance(ClusterStatus s) {
        return s.layers().stream().mapToDouble(ClusterStatus.Layer::workerImbalance).average().orElse(0);
    }

    /**
     * Two prompts: English text when the model has a tokenizer (a trained model's gates then route as they do in
     * use), else random ids.
     */
    private static int[][] skewPrompts(LoadedModel m, Engine engine, int prompt) {
        if (m.tokenizer().isPresent()) {
            return new int[][]{m.tokenizer().get().encode("The capital of France is Paris. The capital of Italy is"),
                    m.tokenizer().get().encode("A programmer is a person who writes programs for a computer, and")};
        }
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(17);
        int[][] prompts = new int[2][];
        for (int i = 0; i < prompts.length; i++) {
            prompts[i] = rnd.ints(prompt, 2, Math.min(2000, engine.vocabSize())).toArray();
        }
        return prompts;
    }

    private static void skewedLoad(Engine engine, int[][] prompts) throws InterruptedException {
        CountDownLatch done = new CountDownLatch(32);
        SamplingParams params = SamplingParams.greedy().withMaxTokens(24).withIgnoreEos(true)
                .withStopTokenIds(Set.of());
        for (int i = 0; i < 32; i++) {
            engine.submit(new EngineRequest("skew-" + i, prompts[i % prompts.length], params, false),
                    listener(null, done));
        }
        done.await(10, TimeUnit.MINUTES);
    }

    /** 24 greedy tokens of a fixed prompt. */
    private static List<Integer> greedy(Engine engine, int prompt) throws InterruptedException {
        List<Integer> ids = java.util.Collections.synchronizedList(new ArrayList<>());
        CountDownLatch done = new CountDownLatch(1);
        SamplingParams params = SamplingParams.greedy().withMaxTokens(24).withIgnoreEos(true)
                .withStopTokenIds(Set.of());
        engine.submit(new EngineRequest("greedy", new java.util.SplittableRandom(99).ints(prompt, 2, Math.min(32000, engine.vocabSize()))
                .toArray(), params, false), listener(ids, done));
        done.await(10, TimeUnit.MINUTES);
        return List.copyOf(ids);
    }

    private static SequenceListener listener(List<Integer> ids, CountDownLatch done) {
        return new SequenceListener() {
            @Override
            public void onToken(TokenEvent token) {
                if (ids != null) {
                    ids.add(token.tokenId());
                }
            }

            @Override
            public void onFinished(Completion completion) {
                done.countDown();
            }
        };
    }
}
