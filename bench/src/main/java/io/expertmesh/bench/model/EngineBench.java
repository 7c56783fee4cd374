package io.expertmesh.bench.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.kvcache.KvStores;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineOptions;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.engine.SequenceListener;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Aggregate decode throughput through the router's engine: N concurrent streams on the benchmark model, each
 * with a short prompt and a fixed number of generated tokens, timed from the moment every stream has its first
 * token to the moment the first one ends (the steady state where all N decode together).
 */
public final class EngineBench {
    private EngineBench() {
    }

    public static void run(ModelSetup options, List<Integer> streams, int prompt, int tokens, double activeBytes,
                    double bandwidth, double warmUpSeconds, ObjectNode result, PrintStream err) {
        try (LoadedModel model = LoadedModel.open(SyntheticModels.ensureBenchModel(SyntheticModels.defaultCacheRoot()),
                options.newCpuKernels(), (a, b) -> { }, null, options.quantization())) {
            ObjectNode out = result.putObject("engine_decode");
            int maxStreams = streams.stream().max(Integer::compare).orElse(1);
            EngineConfig config = new EngineConfig(16, 2L << 30, Math.max(512, maxStreams * prompt), maxStreams,
                    maxStreams * 2, false);
            // --device cuda: the engine's steps on the GPU's device-resident pass.
            try (Engine engine = new Engine(model, config, EngineOptions.DEFAULT
                    .withBackend(options.forwardBackend()))) {
                SplittableRandom rnd = new SplittableRandom(5);
                warmUp(engine, prompt, warmUpSeconds, rnd);
                for (int n : streams) {
                    double tps = measure(engine, n, prompt, tokens, rnd);
                    err.printf("engine decode, %2d streams: %8.1f tokens/s aggregate (%.1f per stream)%s%n", n, tps,
                            tps / n, n == 1 ? String.format(" = %.1f GB/s of weights, %.0f%% of measured bandwidth",
                                    tps * activeBytes / 1e9, 100 * tps * activeBytes / 1e9 / bandwidth) : "");
                    out.put(Integer.toString(n), tps);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Decode throughput with the distributed KV tier on (an embedded member of a one-member cluster on a free
     * loopback port; every prompt's full blocks are published) and off, alternating, each measured twice; prefix
     * caching is on in both (the tier needs it) and prompts are unique, so nothing is served from either cache.
     */
    public static void runKvStoreComparison(ModelSetup options, List<Integer> streams, int prompt, int tokens,
                                     double warmUpSeconds, ObjectNode result, PrintStream err) {
        try (LoadedModel model = LoadedModel.open(SyntheticModels.ensureBenchModel(SyntheticModels.defaultCacheRoot()),
                options.newKernels(), (a, b) -> { }, null, options.quantization())) {
            ObjectNode out = result.putObject("engine_decode_kv_store");
            int maxStreams = streams.stream().max(Integer::compare).orElse(1);
            EngineConfig config = new EngineConfig(16, 2L << 30, Math.max(512, maxStreams * prompt), maxStreams,
                    maxStreams * 2, true);
            SplittableRandom rnd = new SplittableRandom(5);
            int port;
            try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
                port = s.getLocalPort();
            }
            KvStoreConfig embedded = KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED)
                    .clusterName("bench-" + java.util.UUID.randomUUID()).members(List.of("127.0.0.1:" + port))
                    .memberPort(port).publishQueueCapacity(1024).build();
            try (KvBlockStore store = KvStores.create(embedded)) {
                for (int round = 0; round < 2; round++) {
                    for (boolean publishing : new boolean[] {false, true}) {
                        String mode = publishing ? "publishing" : "off";
                        try (Engine engine = publishing ? new Engine(model, config, EngineOptions.DEFAULT
                                .withStore(store))
                                : new Engine(model, config, EngineOptions.DEFAULT)) {
                            warmUp(engine, prompt, warmUpSeconds, rnd);
                            for (int n : streams) {
                                double tps = measure(engine, n, prompt, tokens, rnd);
                                err.printf("engine decode, KV tier %-10s round %d, %2d streams: %8.1f tokens/s "
                                        + "aggregate%n", mode, round + 1, n, tps);
                                ObjectNode byMode = out.has(mode) ? (ObjectNode) out.get(mode) : out.putObject(mode);
                                (byMode.has(Integer.toString(n)) ? (com.fasterxml.jackson.databind.node.ArrayNode)
                                        byMode.get(Integer.toString(n)) : byMode.putArray(Integer.toString(n))).add(tps);
                            }
                        }
                    }
                }
                err.printf("KV store: %s%n", store.stats());
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Untimed single-stream requests of 16 tokens, at least one, until {@code seconds} have passed: the JIT
     * compiles the engine's and the kernels' code in the first seconds (see {@code bench-model --warm-up}).
     */
    public static void warmUp(Engine engine, int prompt, double seconds, SplittableRandom rnd) {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        do {
            measure(engine, 1, prompt, 16, rnd);
        } while (System.nanoTime() < end);
    }

    public static double measure(Engine engine, int n, int prompt, int tokens, SplittableRandom rnd) {
        CountDownLatch allStarted = new CountDownLatch(n);
        CountDownLatch firstDone = new CountDownLatch(1);
        CountDownLatch allDone = new CountDownLatch(n);
        AtomicLong generated = new AtomicLong();
        AtomicLong startedAt = new AtomicLong();
        AtomicLong counted = new AtomicLong();
        SamplingParams params = SamplingParams.greedy().withMaxTokens(tokens).withIgnoreEos(true)
                .withStopTokenIds(Set.of());
        for (int i = 0; i < n; i++) {
            int[] ids = rnd.ints(prompt, 2, Math.min(32000, engine.vocabSize())).toArray();
            engine.submit(new EngineRequest("bench-" + i, ids, params, false), new SequenceListener() {
                @Override
                public void onToken(TokenEvent token) {
                    if (token.index() == 0) {
                        allStarted.countDown();
                        if (allStarted.getCount() == 0) {
                            startedAt.set(System.nanoTime());
                            counted.set(generated.get());
                        }
                    }
                    generated.incrementAndGet();
                }

                @Override
                public void onFinished(Completion completion) {
                    firstDone.countDown();
                    allDone.countDown();
                }
            });
        }
        try {
            allStarted.await();
            firstDone.await();
            long end = System.nanoTime();
            long tokensInWindow = generated.get() - counted.get();
            allDone.await(10, TimeUnit.MINUTES);
            return tokensInWindow / ((end - startedAt.get()) / 1e9);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
