package io.expertmesh.gpucheck.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.generate.Generator;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.BlockKvCache;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.Moe;
import io.expertmesh.core.model.RoutedExperts;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.cuda.forward.DeviceKvCache;
import io.expertmesh.cuda.forward.HostOps;
import io.expertmesh.gpucheck.CheckResult;
import io.expertmesh.gpucheck.DeviceForwardCheck;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The device-resident forward pass on {@link HostOps} (the reference of every device op, so this runs anywhere)
 * against core's CPU {@link Transformer} on the fixture models of every family. The KV pool is bf16 as on a GPU,
 * so logits agree to bf16 rounding of the cache, and greedy tokens are the same. What a GPU run adds is only
 * whether each CUDA kernel equals its HostOps op, which the GPU checks test op by op.
 */
class DeviceForwardTest {
    private static final Path FIXTURES = Path.of("../core/src/test/resources/fixtures");
    private static final double LOGIT_TOL = DeviceForwardCheck.LOGIT_TOL;
    private static ComputePool pool;

    @BeforeAll
    static void pool() {
        pool = ComputePool.create(2);
    }

    @AfterAll
    static void closePool() {
        pool.close();
    }

    private static LoadedModel open(String fixture) throws Exception {
        return LoadedModel.open(FIXTURES.resolve(fixture), new VectorKernels(pool), (a, b) -> { });
    }

    @ParameterizedTest
    @ValueSource(strings = {"deepseek-v3-tiny/bf16", "deepseek-v3-tiny/f32", "deepseek-v3-qlora0",
            "deepseek-v3-groups4", "deepseek-v3-long-yarn", "mixtral-tiny", "qwen2-moe-tiny", "qwen3-moe-tiny"})
    void greedy_everyFamily_sameTokensAndLogitsAsCpu(String fixture) throws Exception {
        int[] prompt = {1, 17, 42, 99, 5, 200, 3, 77, 12, 9, 31};  // 11 tokens: crosses blocks of 4
        CheckResult r = DeviceForwardCheck.compare(FIXTURES.resolve(fixture), new HostOps(), new VectorKernels(pool),
                prompt, 10, 4);
        assertTrue(r.passed(), r.toString());
    }

    @Test
    void v3AttentionShapes_sameTokensAndLogitsAsCpu(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        // The model the GPU check runs through the fast MLA kernel (latent 512, rope 64, 16 heads).
        io.expertmesh.core.synthetic.SyntheticModels.writeModel(
                io.expertmesh.core.synthetic.SyntheticModels.v3AttentionConfig(), 3, dir);
        CheckResult r = DeviceForwardCheck.compare(dir, new HostOps(), new VectorKernels(pool),
                new int[]{1, 17, 42, 99, 5}, 4, 4);
        assertTrue(r.passed(), r.toString());
    }

    @Test
    void mixedBatch_prefillAndDecodeOfOtherSequences_eachRowAsWhenAlone() throws Exception {
        try (LoadedModel m = open("deepseek-v3-tiny/f32");
             DeviceForward dev = new DeviceForward(m.transformer(), new HostOps(), 32, 4, null)) {
            int vocab = m.config().vocabSize();
            DeviceForward.Runner r = dev.newRunner();
            int[] a = {5, 6, 7, 8, 9, 10, 11};
            int[] b = {100, 101, 102};
            // Alone: A's 7 tokens, then B's 3, each in its own cache.
            float[] aloneA = new float[vocab];
            float[] aloneB = new float[vocab];
            try (DeviceKvCache ca = dev.newCache(64); DeviceKvCache cb = dev.newCache(64)) {
                r.forward(ForwardBatch.ofSequence(a, 0, ca, a.length - 1), aloneA);
                r.forward(ForwardBatch.ofSequence(b, 0, cb, b.length - 1), aloneB);
            }
            // Together: B's prefill and A's prefill interleaved in one batch, with interleaved block ids.
            try (DeviceKvCache cb = dev.newCache(8); DeviceKvCache ca = dev.newCache(64)) {
                int n = a.length + b.length;
                int[] tokens = new int[n];
                int[] pos = new int[n];
                KvCache[] caches = new KvCache[n];
                for (int i = 0; i < b.length; i++) {
                    tokens[i] = b[i];
                    pos[i] = i;
                    caches[i] = cb;
                }
                for (int i = 0; i < a.length; i++) {
                    tokens[b.length + i] = a[i];
                    pos[b.length + i] = i;
                    caches[b.length + i] = ca;
                }
                float[] both = new float[2 * vocab];
                r.forward(new ForwardBatch(tokens, pos, caches, new int[]{n - 1, b.length - 1}), both);
                assertArrayEquals(aloneA, Arrays.copyOfRange(both, 0, vocab), 1e-4f, "A's row");
                assertArrayEquals(aloneB, Arrays.copyOfRange(both, vocab, 2 * vocab), 1e-4f, "B's row");
            }
        }
    }

    @Test
    void hostMirror_rowsWrittenToHostCache_andHostWrittenBlocksUploaded() throws Exception {
        try (LoadedModel m = open("deepseek-v3-tiny/f32")) {
            Transformer tr = m.transformer();
            int row = m.config().kvRowWidth();
            int layers = m.config().numLayers();
            HostPool host = new HostPool(layers, 16, 4, row);
            try (DeviceForward dev = new DeviceForward(tr, new HostOps(), 16, 4, host::block)) {
                int vocab = m.config().vocabSize();
                int[] prompt = {3, 14, 15, 92, 65, 35, 89};
                // Device prefill into a host-mirrored cache: the host rows must be what the CPU writes.
                HostCache onDevice = host.cache(new int[]{9, 2});
                dev.newRunner().forward(ForwardBatch.ofSequence(prompt, 0, onDevice, prompt.length - 1),
                        new float[vocab]);
                KvCache cpuCache = tr.newCache(64);
                tr.forward(ForwardBatch.ofSequence(prompt, 0, cpuCache, prompt.length - 1), new float[vocab]);
                for (int l = 0; l < layers; l++) {
                    for (int p = 0; p < prompt.length; p++) {
                        float[] want = Arrays.copyOfRange(cpuCache.array(l, p), cpuCache.offset(p),
                                cpuCache.offset(p) + row);
                        float[] got = Arrays.copyOfRange(onDevice.array(l, p), onDevice.offset(p),
                                onDevice.offset(p) + row);
                        // Layer 0's rows depend on no cache; later layers read the bf16 pool.
                        double tol = l == 0 ? 1e-5 : LOGIT_TOL;
                        assertTrue(relL2(got, want) < tol, "host row " + p + " of layer " + l + ": "
                                + relL2(got, want));
                    }
                }
                // Host-written blocks (an imported prefix): CPU prefill into blocks 5 and 11, announced to the
                // device, which then decodes the next token from them as the CPU does.
                HostCache imported = host.cache(new int[]{5, 11, 7});
                tr.forward(ForwardBatch.ofSequence(prompt, 0, imported, prompt.length - 1), new float[vocab]);
                dev.hostWrote(5);
                dev.hostWrote(11);
                float[] cpuNext = new float[vocab];
                float[] devNext = new float[vocab];
                int next = 42;
                tr.forward(ForwardBatch.ofSequence(new int[]{next}, prompt.length, cpuCache, 0), cpuNext);
                dev.newRunner().forward(ForwardBatch.ofSequence(new int[]{next}, prompt.length, imported, 0),
                        devNext);
                assertTrue(relL2(devNext, cpuNext) < LOGIT_TOL, "decode over uploaded host blocks");
                assertEquals(DeviceForwardCheck.argmax(cpuNext), DeviceForwardCheck.argmax(devNext));
            }
        }
    }

    @Test
    void remoteExperts_dispatchedFromHost_sameAsOnDevice() throws Exception {
        try (LoadedModel local = open("qwen2-moe-tiny");
             LoadedModel remote = LoadedModel.open(FIXTURES.resolve("qwen2-moe-tiny"), new VectorKernels(pool),
                     (a, b) -> { }, layer -> new Deferred(
                             ((Moe) local.transformer().block(layer).ffn()).routed()));
             DeviceForward onDevice = new DeviceForward(local.transformer(), new HostOps(), 16, 4, null);
             DeviceForward viaHost = new DeviceForward(remote.transformer(), new HostOps(), 16, 4, null)) {
            int[] prompt = {8, 6, 7, 5, 3, 0, 9};
            DeviceForwardCheck.Greedy a = DeviceForwardCheck.onDevice(onDevice, prompt, 6);
            DeviceForwardCheck.Greedy b = DeviceForwardCheck.onDevice(viaHost, prompt, 6);
            assertEquals(a.tokens(), b.tokens());
            for (int i = 0; i < a.logits().size(); i++) {
                assertTrue(relL2(b.logits().get(i), a.logits().get(i)) < 1e-5, "step " + i);
            }
        }
    }

    @Test
    void generator_onDeviceBackend_sameTokensAsCpu_andGivesBlocksBack() throws Exception {
        try (LoadedModel m = open("qwen3-moe-tiny");
             DeviceForward dev = new DeviceForward(m.transformer(), new HostOps(), 5, 4, null)) {
            int[] prompt = {4, 8, 15, 16, 23, 42};
            SamplingParams greedy = SamplingParams.greedy().withMaxTokens(12).withIgnoreEos(true);
            List<Integer> cpu = new java.util.ArrayList<>();
            new Generator(m.transformer(), null).generate(prompt, greedy, e -> cpu.add(e.tokenId()));
            Generator onDevice = new Generator(m.transformer(), null, dev);
            for (int round = 0; round < 3; round++) {  // 18 positions need all 5 blocks: each run must free them
                List<Integer> got = new java.util.ArrayList<>();
                onDevice.generate(prompt, greedy, e -> got.add(e.tokenId()));
                assertEquals(cpu, got, "round " + round);
            }
        }
    }

    @Test
    void badInput_clearErrors() throws Exception {
        try (LoadedModel m = open("mixtral-tiny");
             DeviceForward dev = new DeviceForward(m.transformer(), new HostOps(), 4, 4, null)) {
            int vocab = m.config().vocabSize();
            DeviceForward.Runner r = dev.newRunner();
            try (DeviceKvCache c = dev.newCache(8)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> r.forward(ForwardBatch.ofSequence(new int[]{vocab}, 0, c, 0), new float[vocab]));
                assertTrue(e.getMessage().contains("outside vocabulary"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class,
                        () -> r.forward(ForwardBatch.ofSequence(new int[]{1}, 8, c, 0), new float[vocab]));
                assertTrue(e.getMessage().contains("context limit"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> r.forward(
                        ForwardBatch.ofSequence(new int[]{1}, 0, m.transformer().newCache(8), 0), new float[vocab]));
                assertTrue(e.getMessage().contains("block caches"), e.getMessage());
            }
            IllegalStateException full = assertThrows(IllegalStateException.class, () -> dev.newCache(17));
            assertTrue(full.getMessage().contains("free blocks"), full.getMessage());
            assertThrows(IllegalStateException.class, () -> dev.hostWrote(0));
        }
    }

    // ---- helpers

    static double relL2(float[] got, float[] want) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < want.length; i++) {
            double d = got[i] - want[i];
            num += d * d;
            den += (double) want[i] * want[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }

    /** A host block store like the router's paged storage. */
    private record HostPool(int layers, int blocks, int blockSize, int row, float[][][] data) {
        HostPool(int layers, int blocks, int blockSize, int row) {
            this(layers, blocks, blockSize, row, new float[blocks][layers][blockSize * row]);
        }

        float[] block(int id, int layer) {
            return data[id][layer];
        }

        HostCache cache(int[] ids) {
            return new HostCache(this, ids);
        }
    }

    /** A sequence's block table over {@link HostPool}, as the router's BlockTable. */
    private record HostCache(HostPool pool, int[] ids) implements BlockKvCache {
        @Override
        public int blockSize() {
            return pool.blockSize;
        }

        @Override
        public int blockOf(int pos) {
            return ids[pos / pool.blockSize];
        }

        @Override
        public float[] array(int layer, int pos) {
            return pool.block(blockOf(pos), layer);
        }

        @Override
        public int offset(int pos) {
            return (pos % pool.blockSize) * pool.row;
        }

        @Override
        public int contiguousRows(int pos) {
            return pool.blockSize - pos % pool.blockSize;
        }

        @Override
        public int capacity() {
            return ids.length * pool.blockSize;
        }
    }

    /** Routed experts that run only when finished, like experts on a worker (arguments copied at start). */
    private record Deferred(RoutedExperts local) implements RoutedExperts {
        @Override
        public void run(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                        io.expertmesh.core.model.StepContext ctx) {
            local.run(xn, tokens, ids, weights, topK, out, ctx);
        }

        @Override
        public Pending start(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                             io.expertmesh.core.model.StepContext ctx) {
            float[] x = xn.clone();
            int[] i = ids.clone();
            float[] w = weights.clone();
            return () -> local.run(x, tokens, i, w, topK, out, ctx);
        }
    }
}
