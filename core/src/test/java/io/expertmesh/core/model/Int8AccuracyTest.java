package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.QuantizedAccuracyHarness.Agreement;
import io.expertmesh.core.model.QuantizedAccuracyHarness.Fixture;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.tensor.Quantization;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code --quantize int8} against the unquantized model on every fixture, the llama.cpp way: teacher-forced over
 * the fixture's reference sequence (prompt, then the reference's greedy tokens), the mean KL divergence
 * KL(p_none ‖ p_int8) of the next-token distributions and the share of positions whose top-1 token agrees; and
 * free-running greedy decoding from the prompt, the tokens generated before the first difference.
 *
 * <p>The fixtures are tiny (hidden 32 or 64) with small, random weights, so their logits are flat and their top-2
 * margins small (down to 0.08): a harder case than a trained model for top-1 agreement. Their matrices whose K is
 * not a multiple of 32 (e.g. MLA's 16-wide LoRA ranks, 8- or 16-wide expert intermediates) stay unquantized, as
 * the loader does for any such matrix; the printed byte ratio shows how much of each model is int8.
 */
class Int8AccuracyTest {
    /**
     * Bounds for a fixture: mean KL, top-1 agreement, greedy tokens that must agree. Measured (README table) with
     * margin. Most fixtures: KL ≤ 2.8e-3, top-1 ≥ 15/16, greedy identical.
     */
    private record Bounds(double maxMeanKl, double minTop1, int minGreedySame) {
    }

    private static final Bounds DEFAULT = new Bounds(5e-3, 0.9, Integer.MAX_VALUE);

    /**
     * Fixtures that amplify any perturbation, with bounds from their measurement: deepseek-v3-tiny measured KL
     * 0.128, top-1 10/16, greedy equal for 2 of 9 tokens — nearly all of it from the per-head W_UV pieces alone
     * (KL 0.124 when only they are int8; every other matrix class alone stays under 5e-4), and its
     * reference.json records that computing in bf16 instead of f32, with the same weights, already moves its
     * last logits by 0.79 and its greedy tokens after 2; deepseek-v3-long-yarn measured KL 0.036 (kv_a and the
     * dense layer-0 MLP), top-1 45/46, greedy identical.
     */
    private static final java.util.Map<String, Bounds> SENSITIVE = java.util.Map.of(
            "deepseek-v3-tiny/f32", new Bounds(0.2, 0.55, 2),
            "deepseek-v3-tiny/bf16", new Bounds(0.2, 0.55, 2),
            "deepseek-v3-long-yarn", new Bounds(0.06, 0.9, Integer.MAX_VALUE));

    static Stream<String> fixtures() {
        return QuantizedAccuracyHarness.fixtures();
    }

    /** Its own pool: ReferenceLogitsTest closes its pool after its tests, and may run before or after these. */
    private static final ComputePool POOL = ComputePool.create(2);

    @AfterAll
    static void closePool() {
        POOL.close();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void int8_fixture_closeToUnquantized(String fixture) throws Exception {
        Fixture f = Fixture.load(fixture);
        ModelConfig config = f.config();
        int vocab = f.vocab();
        int[] seq = f.seq();
        VectorKernels kernels = new VectorKernels(POOL);
        try (Checkpoint weights = TestWeights.open(f.dir())) {
            ModelBuilder noneBuilder = new ModelBuilder(config, weights, kernels);
            ModelBuilder int8Builder = new ModelBuilder(config, weights, kernels).quantize(Quantization.INT8);
            try (Transformer none = noneBuilder.build(); Transformer int8 = int8Builder.build()) {
                float[] a = QuantizedAccuracyHarness.logits(none, seq, vocab);
                float[] b = QuantizedAccuracyHarness.logits(int8, seq, vocab);
                Agreement agreement = QuantizedAccuracyHarness.agreement(a, b, seq.length, vocab);
                int steps = f.greedy().length;
                int same = QuantizedAccuracyHarness.sameGreedyPrefix(none, int8, f.prompt(), steps, vocab);
                System.out.printf(Locale.ROOT, "int8 accuracy %-22s mean KL %.2e  top-1 %d/%d  greedy %d/%d same  "
                                + "weights read per token %.2f of unquantized%n", fixture, agreement.meanKl(),
                        agreement.top1(), seq.length, same, steps,
                        (double) int8Builder.activeWeightBytes() / noneBuilder.activeWeightBytes());
                assertTrue(int8Builder.activeWeightBytes() < noneBuilder.activeWeightBytes(),
                        fixture + ": nothing was quantized");
                Bounds bounds = SENSITIVE.getOrDefault(fixture, DEFAULT);
                assertTrue(agreement.meanKl() < bounds.maxMeanKl(), fixture + ": mean KL " + agreement.meanKl());
                assertTrue(agreement.top1Share() >= bounds.minTop1(),
                        fixture + ": top-1 agreement " + agreement.top1Share());
                assertTrue(same >= Math.min(steps, bounds.minGreedySame()),
                        fixture + ": greedy tokens differ after " + same + " of " + steps);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void int8_promptAsOneBatch_equalsTokenByTokenBitForBit(String fixture) throws Exception {
        QuantizedAccuracyHarness.assertPromptAsOneBatchEqualsTokenByToken(fixture, Quantization.INT8, POOL);
    }
}
