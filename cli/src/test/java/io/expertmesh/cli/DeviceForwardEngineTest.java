package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.cuda.forward.HostOps;
import io.expertmesh.kvcache.BlockKey;
import io.expertmesh.kvcache.KvBlock;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvStoreStats;
import io.expertmesh.kvcache.NoopKvBlockStore;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineOptions;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.engine.SequenceListener;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The router's engine with its forward steps on the device-resident pass ({@code DeviceForward}), run here on
 * {@link HostOps} (the reference of every device op): continuous batching of concurrent requests with the KV
 * blocks in the device pool, local prefix hits on device blocks, and prefixes imported from the distributed tier
 * into the host copy and uploaded. Greedy outputs equal the CPU engine's; over imported blocks every output
 * (sampled too) equals the device's own cold run.
 */
class DeviceForwardEngineTest {
    private static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");
    private static final EngineConfig CONFIG = new EngineConfig(4, 4L << 20, 64, 8, 32, true);

    @Test
    void engine_onDevicePass_sameOutputsAsCpu_withPrefixHitsAndImportedBlocks() throws Exception {
        int[][] prompts = {
                {1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41},
                {1, 5, 9, 13, 17, 21, 25, 29, 2, 4},        // shares two blocks of 4 with the first
                {7, 3, 99, 150, 6},
                {1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 8, 8},
        };
        List<SamplingParams> params = List.of(SamplingParams.greedy().withMaxTokens(8),
                SamplingParams.defaults().withSeed(11L).withTemperature(0.8f).withMaxTokens(8));
        try (ComputePool pool = ComputePool.create(2);
             LoadedModel model = LoadedModel.open(FIXTURE, new VectorKernels(pool), (a, b) -> { })) {
            List<List<Integer>> cpu;
            try (Engine e = engine(model, new NoopKvBlockStore(), ForwardBackend.CPU)) {
                cpu = runAll(e, prompts, params);
            }
            List<List<Integer>> device;
            try (Engine e = engine(model, new NoopKvBlockStore(), DeviceForward.factory(new HostOps()))) {
                device = runAll(e, prompts, params);
            }
            // Greedy tokens equal the CPU's; a sampled draw may land on another token where the bf16 cache moves a
            // probability across the draw, so sampled requests are compared device against device below.
            for (int i = 0; i < cpu.size(); i += params.size()) {
                assertEquals(cpu.get(i), device.get(i), "greedy request " + i + " on the device pass");
            }

            // Router A (device) computes and publishes; router B (device, empty pool) imports the prefix blocks
            // into its host copy, which must reach its device pool before the steps that read them.
            MapStore store = new MapStore();
            try (Engine a = engine(model, store, DeviceForward.factory(new HostOps()))) {
                runAll(a, prompts, params);
            }
            assertTrue(store.map.size() >= 4, "blocks published: " + store.map.size());
            try (Engine b = engine(model, store, DeviceForward.factory(new HostOps()))) {
                List<List<Integer>> imported = runAll(b, prompts, params);
                assertEquals(device, imported, "outputs over imported prefix blocks, sampled ones included");
                assertTrue(store.hitBlocks.get() > 0, "B took no block from the store");
            }
        }
    }

    @Test
    void engine_twoMicroBatchesAndRemoteExperts_onDevicePass_sameOutputsAsOneBatch() throws Exception {
        // A router whose routed experts are "elsewhere" (dispatched from the host, run when finished) with two
        // micro-batches: two runners of one device pass alternate under the compute lock.
        int[][] prompts = {{1, 5, 9, 13, 17}, {2, 4, 6}, {7, 3, 99, 150, 6, 8}, {11, 12}};
        List<SamplingParams> params = List.of(SamplingParams.greedy().withMaxTokens(6),
                SamplingParams.defaults().withSeed(5L).withTemperature(0.9f).withMaxTokens(6));
        Path fixture = Path.of("../core/src/test/resources/fixtures/qwen2-moe-tiny");
        try (ComputePool pool = ComputePool.create(2);
             LoadedModel local = LoadedModel.open(fixture, new VectorKernels(pool), (a, b) -> { });
             LoadedModel remote = LoadedModel.open(fixture, new VectorKernels(pool), (a, b) -> { },
                     layer -> new DeferredExperts(((io.expertmesh.core.model.Moe) local.transformer().block(layer)
                             .ffn()).routed()))) {
            List<List<Integer>> oneBatch;
            try (Engine e = engine(remote, new NoopKvBlockStore(), DeviceForward.factory(new HostOps()))) {
                oneBatch = runAll(e, prompts, params);
            }
            List<List<Integer>> twoBatches;
            try (Engine e = new Engine(remote, CONFIG, EngineOptions.DEFAULT
                    .withMicroBatching(new Engine.MicroBatching(new java.util.concurrent.locks.ReentrantLock()))
                    .withBackend(DeviceForward.factory(new HostOps())))) {
                twoBatches = runAll(e, prompts, params);
            }
            assertEquals(oneBatch, twoBatches);
        }
    }

    @Test
    void routerOnDevicePass_withWorkerOnDeviceExperts_sameGreedyTokensAsCpu() throws Exception {
        // The GPU deployment's shape: a router running attention on its device pass, dispatching to a worker
        // whose experts are in device memory (both on HostOps here), over a real loopback socket.
        int[][] prompts = {{1, 5, 9, 13, 17, 21}, {2, 4, 6}, {7, 3, 99, 150, 6, 8, 10}};
        List<SamplingParams> greedy = List.of(SamplingParams.greedy().withMaxTokens(8));
        try (ComputePool pool = ComputePool.create(2);
             LoadedModel cpuModel = LoadedModel.open(FIXTURE, new VectorKernels(pool), (a, b) -> { })) {
            List<List<Integer>> cpu;
            try (Engine e = engine(cpuModel, new NoopKvBlockStore(), ForwardBackend.CPU)) {
                cpu = runAll(e, prompts, greedy);
            }
            io.expertmesh.worker.ExpertWorkerServer worker = new io.expertmesh.worker.ExpertWorkerServer(
                    new io.expertmesh.worker.WorkerConfig(FIXTURE, 0, io.expertmesh.worker.ExpertSelection.NONE),
                    new VectorKernels(pool)).expertRunners(new io.expertmesh.cuda.forward.DeviceExperts(new HostOps()))
                    .start();
            try (io.expertmesh.router.experts.ExpertCluster cluster = new io.expertmesh.router.experts.ExpertCluster(
                    cpuModel.config(), io.expertmesh.router.experts.ExpertClusterConfig.of(
                            List.of("127.0.0.1:" + worker.port()), 0),
                    io.expertmesh.router.experts.WorkerChannels.plaintext(),
                    io.expertmesh.router.experts.DispatchObserver.NONE)) {
                worker.awaitLoaded();
                cluster.start();
                try (LoadedModel routerModel = LoadedModel.open(FIXTURE, new VectorKernels(pool), (a, b) -> { },
                        cluster.routedExperts());
                     Engine e = new Engine(routerModel, CONFIG, EngineOptions.DEFAULT
                             .withMicroBatching(new Engine.MicroBatching(cluster.computeLock()))
                             .withBackend(DeviceForward.factory(new HostOps())))) {
                    assertEquals(cpu, runAll(e, prompts, greedy));
                }
            } finally {
                worker.close();
            }
        }
    }

    /** Routed experts that run only when finished, as on a worker (arguments copied at start). */
    private record DeferredExperts(io.expertmesh.core.model.RoutedExperts local)
            implements io.expertmesh.core.model.RoutedExperts {
        @Override
        public void run(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                        io.expertmesh.core.model.StepContext ctx) {
            start(xn, tokens, ids, weights, topK, out, ctx).finish();
        }

        @Override
        public Pending start(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                             io.expertmesh.core.model.StepContext ctx) {
            float[] x = xn.clone();
            int[] i = ids.clone();
            float[] w = weights.clone();
            // LocalExperts keeps working buffers: one layer's experts run one batch at a time.
            return () -> {
                synchronized (local) {
                    local.run(x, tokens, i, w, topK, out, ctx);
                }
            };
        }
    }

    private static Engine engine(LoadedModel model, KvBlockStore store, ForwardBackend.Factory backend) {
        return new Engine(model, CONFIG, EngineOptions.DEFAULT.withStore(store).withBackend(backend));
    }

    /** Every prompt with every params, submitted together; the token ids of each, in submission order. */
    private static List<List<Integer>> runAll(Engine engine, int[][] prompts, List<SamplingParams> params)
            throws Exception {
        List<CompletableFuture<List<Integer>>> futures = new ArrayList<>();
        int n = 0;
        for (int[] p : prompts) {
            for (SamplingParams sp : params) {
                List<Integer> ids = new ArrayList<>();
                CompletableFuture<List<Integer>> done = new CompletableFuture<>();
                engine.submit(new EngineRequest("r" + n++, p, sp, false), new SequenceListener() {
                    @Override
                    public void onToken(TokenEvent token) {
                        ids.add(token.tokenId());
                    }

                    @Override
                    public void onFinished(Completion completion) {
                        if (completion.error() != null) {
                            done.completeExceptionally(new AssertionError(completion.error()));
                        } else {
                            done.complete(ids);
                        }
                    }
                });
                futures.add(done);
            }
        }
        List<List<Integer>> out = new ArrayList<>();
        for (CompletableFuture<List<Integer>> f : futures) {
            out.add(f.get(60, TimeUnit.SECONDS));
        }
        return out;
    }

    /** An in-memory distributed tier with the real store's lookup rules (stop at the first miss, verify). */
    static final class MapStore implements KvBlockStore {
        final Map<BlockKey, KvBlock> map = new ConcurrentHashMap<>();
        final java.util.concurrent.atomic.AtomicInteger hitBlocks = new java.util.concurrent.atomic.AtomicInteger();

        @Override
        public List<KvBlock> getPrefix(List<BlockKey> keys, List<int[]> expectedTokens) {
            List<KvBlock> hits = new ArrayList<>();
            for (int i = 0; i < keys.size(); i++) {
                KvBlock b = map.get(keys.get(i));
                if (b == null || !b.verify() || (expectedTokens != null && expectedTokens.get(i) != null
                        && !java.util.Arrays.equals(expectedTokens.get(i), b.tokenIds()))) {
                    break;
                }
                hits.add(b);
            }
            hitBlocks.addAndGet(hits.size());
            return hits;
        }

        @Override
        public boolean publish(KvBlock block) {
            map.put(block.key(), block);
            return true;
        }

        @Override
        public KvStoreStats stats() {
            return new KvStoreStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, map.size(), map.size(), 0, 0, 0, 0, 0, 0, 0, 0);
        }

        @Override
        public void close() {
        }
    }
}
