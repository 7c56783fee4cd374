package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.safetensors.Checkpoint;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Attention tasks take groups of heads whose size depends on the pool's threads and the step's tokens
 * ({@link AttentionScratch#headGroup}); the grouped kernels must give every head the bits it gets alone. On one
 * thread the MLA fixture's 4 heads go in fours (prefill: the 4-query kernels) and twos (decode), each GQA fixture's
 * pairs of heads sharing a KV head in twos; sixteen threads give every head its own task. Logits of a prefill and
 * of decode steps must be identical.
 */
class AttentionGroupingTest {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"deepseek-v3-tiny/f32", "mixtral-tiny", "qwen3-moe-tiny"})
    void logits_headsGroupedOrAlone_bitIdentical(String fixture) throws Exception {
        assertEquals(4, AttentionScratch.headGroup(4, 8, 1), "one thread: prefill groups all 4 heads");
        assertEquals(1, AttentionScratch.headGroup(4, 8, 16), "sixteen threads: one head per task");
        float[] grouped;
        float[] alone;
        try (ComputePool one = ComputePool.create(1); ComputePool sixteen = ComputePool.create(16)) {
            grouped = run(fixture, new VectorKernels(one));
            alone = run(fixture, new VectorKernels(sixteen));
        }
        assertArrayEquals(alone, grouped, fixture);
    }

    /** Logits of an 8-token prefill (every position) followed by 5 greedy decode steps. */
    private static float[] run(String fixture, VectorKernels kernels) throws Exception {
        Path dir = ReferenceLogitsTest.FIXTURES.resolve(fixture);
        ModelConfig config = ModelConfig.load(dir);
        int vocab = config.vocabSize();
        int[] prompt = {1, 7, 3, 12, 5, 9, 2, 11};
        int steps = 5;
        float[] all = new float[(prompt.length + steps) * vocab];
        try (Checkpoint weights = TestWeights.open(dir);
             Transformer model = new ModelBuilder(config, weights, kernels).build()) {
            KvCache cache = model.newCache(prompt.length + steps);
            model.forward(ForwardBatch.ofSequenceAllLogits(prompt, 0, cache), all);
            float[] step = Arrays.copyOfRange(all, (prompt.length - 1) * vocab, prompt.length * vocab);
            for (int i = 0; i < steps; i++) {
                int token = ReferenceLogitsTest.argmax(step, 0, vocab);
                model.forward(ForwardBatch.ofSequence(new int[] {token}, prompt.length + i, cache, 0), step);
                System.arraycopy(step, 0, all, (prompt.length + i) * vocab, vocab);
            }
        }
        return all;
    }
}
