package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.safetensors.Checkpoint;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One decode token's MLA attention over a long context splits positions, then latent columns, over the pool's
 * threads ({@link Mla#attendLongContext}) instead of giving each task a group of heads; it must give the bits of
 * the short-context path. Here the split starts at one position, in blocks of 3 positions and 16 latent columns
 * (deepseek-v3-tiny's 32: two blocks; qlora0's 24: one empty block and one of 24, as block starts are multiples of
 * 16), on a contiguous cache and on one paged in blocks of 5 positions, on 2 and 3 threads.
 */
class MlaLongContextTest {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"deepseek-v3-tiny/f32", "deepseek-v3-qlora0", "deepseek-v3-long-yarn"})
    void decode_longContextSplit_bitIdenticalToHeadGroups(String fixture) throws Exception {
        Mla.LongContextSplit defaults = Mla.longContext;
        try (ComputePool two = ComputePool.create(2); ComputePool three = ComputePool.create(3)) {
            float[] headGroups = run(fixture, new VectorKernels(two), false);
            Mla.longContext = new Mla.LongContextSplit(1, 3, 16);
            assertArrayEquals(headGroups, run(fixture, new VectorKernels(two), false), "2 threads, contiguous");
            assertArrayEquals(headGroups, run(fixture, new VectorKernels(two), true), "2 threads, paged");
            assertArrayEquals(headGroups, run(fixture, new VectorKernels(three), true), "3 threads, paged");
        } finally {
            Mla.longContext = defaults;
        }
    }

    /** Logits of a 6-token prefill's last position and of 14 greedy decode steps after it. */
    private static float[] run(String fixture, VectorKernels kernels, boolean paged) throws Exception {
        Path dir = ReferenceLogitsTest.FIXTURES.resolve(fixture);
        ModelConfig config = ModelConfig.load(dir);
        int vocab = config.vocabSize();
        int[] prompt = {1, 7, 3, 12, 5, 9};
        int steps = 14;
        float[] all = new float[(steps + 1) * vocab];
        try (Checkpoint weights = TestWeights.open(dir);
             Transformer model = new ModelBuilder(config, weights, kernels).build()) {
            int capacity = prompt.length + steps;
            KvCache cache = paged
                    ? new PagedCache(config.numLayers(), config.kvLoraRank() + config.qkRopeHeadDim(), 5,
                            capacity)
                    : model.newCache(capacity);
            float[] step = new float[vocab];
            model.forward(ForwardBatch.ofSequence(prompt, 0, cache, prompt.length - 1), step);
            System.arraycopy(step, 0, all, 0, vocab);
            for (int i = 0; i < steps; i++) {
                int token = ReferenceLogitsTest.argmax(step, 0, vocab);
                model.forward(ForwardBatch.ofSequence(new int[] {token}, prompt.length + i, cache, 0), step);
                System.arraycopy(step, 0, all, (i + 1) * vocab, vocab);
            }
        }
        return all;
    }

    /** Rows in blocks of {@code block} positions, each block its own array per layer. */
    private record PagedCache(float[][][] blocks, int row, int block, int capacity) implements KvCache {
        PagedCache(int layers, int row, int block, int capacity) {
            this(new float[(capacity + block - 1) / block][layers][block * row], row, block, capacity);
        }

        @Override
        public float[] array(int layer, int pos) {
            return blocks[pos / block][layer];
        }

        @Override
        public int offset(int pos) {
            return pos % block * row;
        }

        @Override
        public int contiguousRows(int pos) {
            return block - pos % block;
        }
    }
}
