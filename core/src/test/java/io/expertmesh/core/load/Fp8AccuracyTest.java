package io.expertmesh.core.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import io.expertmesh.core.safetensors.Fp8Loading;
import io.expertmesh.core.safetensors.SafetensorsWriter;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Native FP8 on every fixture that has FP8-able matrices, against two twins of the same FP8 checkpoint: the BF16
 * one the old loader made (each weight {@code e4m3·scale} rounded to BF16) and an exact F32 one (the product in
 * float, which is what the native kernels compute). Teacher-forced over the fixture's reference sequence: the
 * largest difference of any log-probability and of the top token's, and free-running greedy tokens.
 *
 * <p>Measured: FP8 in the Java kernel ({@code Fp8Matmul}, float activations) is within 1.3e-5 of the exact twin on
 * every fixture (summation order only); in the native kernel ({@code NativeMatmul}, activations split into two bf16
 * halves, 16 bits) within 5.7e-5..2.5e-4 (1.9e-4 while MLA's kv_b pieces of these head sizes ran as F32; they are
 * FP8 slices now); its greedy tokens are the BF16 twin's either way. The BF16 twin itself is 3e-2..0.12 away from the
 * exact one in the largest
 * log-probability (6.3 on deepseek-v3-qlora0, for a token of negligible probability): its rounding of the weights
 * to 8 bits, which these tiny random models amplify (deepseek-v3-tiny's reference.json: bf16 instead of f32
 * arithmetic moves its logits by 0.79). So the 1e-3 against the BF16 twin is not a bound these fixtures
 * can meet; what is asserted is closeness to the exact dequantization and identical greedy tokens.
 */
class Fp8AccuracyTest {
    private static final Path FIXTURES = Path.of("src/test/resources/fixtures");
    private static final ComputePool POOL = ComputePool.create(2);

    @TempDir
    static Path tmp;

    @AfterAll
    static void closePool() {
        POOL.close();
    }

    static Stream<String> fixtures() {
        return Stream.of("deepseek-v3-tiny/f32", "deepseek-v3-tiny/bf16", "deepseek-v3-qlora0", "deepseek-v3-groups4",
                "deepseek-v3-noyarn", "deepseek-v3-long-yarn", "qwen2-moe-tiny", "qwen3-moe-tiny");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void nativeFp8_closeToBothTwins_sameGreedyTokens(String fixture) throws IOException {
        Path src = FIXTURES.resolve(fixture);
        Path base = tmp.resolve(fixture.replace('/', '-'));
        Path fp8 = base.resolve("fp8");
        Path bf16 = base.resolve("bf16");
        Path f32 = base.resolve("f32");
        Fp8BlockQuantizer.quantize(src, fp8);
        Fp8BlockQuantizer.writeDequantizedTwin(fp8, bf16);
        writeExactTwin(fp8, f32);
        JsonNode ref = new ObjectMapper().readTree(src.resolve("reference.json").toFile());
        int[] prompt = ids(ref.get("prompt_ids"));
        int[] greedy = ids(ref.get("greedy_tokens"));
        int[] seq = new int[prompt.length + greedy.length - 1];
        System.arraycopy(prompt, 0, seq, 0, prompt.length);
        System.arraycopy(greedy, 0, seq, prompt.length, greedy.length - 1);
        int vocab = ModelConfig.load(fp8).vocabSize();
        float[] n = logits(fp8, seq);
        float[] old = logits(bf16, seq);
        double vsBf16 = maxLogProbDiff(n, old, seq.length, vocab);
        double top1 = maxTop1Diff(n, old, seq.length, vocab);
        float[] exact = logits(f32, seq);
        double vsF32 = maxLogProbDiff(n, exact, seq.length, vocab);
        double twins = maxLogProbDiff(logits(bf16, seq), exact, seq.length, vocab);
        int[] gn = greedy(fp8, prompt, greedy.length);
        int[] gb = greedy(bf16, prompt, greedy.length);
        System.out.printf(Locale.ROOT, "fp8 accuracy %-22s max |Δ log-prob| vs BF16 twin %.2e (top token %.2e), "
                + "vs exact F32 twin %.2e (%d positions; BF16 twin vs F32 twin %.2e); greedy %d tokens same as BF16 "
                + "twin: %b%n", fixture, vsBf16, top1, vsF32, seq.length, twins,
                greedy.length, java.util.Arrays.equals(gn, gb));
        // Float activations keep the exact twin's arithmetic up to summation order; the native kernel's 16-bit
        // activations add about 1e-5 per product, which these tiny random models amplify to 2e-4.
        double bound = VectorKernels.bf16Kernel().startsWith("native") ? 5e-4 : 1e-4;
        assertTrue(vsF32 < bound, fixture + ": native FP8 vs exact F32 twin " + vsF32 + " (bound " + bound + ")");
        assertArrayEquals(gb, gn, fixture + ": greedy tokens");
    }

    /** The FP8 checkpoint with every FP8 matrix written as F32 {@code e4m3·scale}, exactly. */
    static void writeExactTwin(Path fp8, Path dst) throws IOException {
        Files.createDirectories(dst);
        try (Checkpoint cp = Checkpoint.open(fp8, Fp8Loading.NATIVE)) {
            SafetensorsWriter out = new SafetensorsWriter();
            for (String name : cp.names()) {
                if (name.endsWith(Checkpoint.SCALE_SUFFIX)) {
                    continue;
                }
                long[] shape = cp.info(name).shape();
                if (cp.info(name).dtype() == DType.F8_E4M3) {
                    Matrix m = cp.matrix(name, (int) shape[0], (int) shape[1]);
                    float[] v = new float[m.rows() * m.cols()];
                    for (int r = 0; r < m.rows(); r++) {
                        for (int c = 0; c < m.cols(); c++) {
                            v[r * m.cols() + c] = m.get(r, c);
                        }
                    }
                    out.addF32(name, v, shape);
                } else {
                    out.add(name, cp.info(name).dtype(), cp.raw(name), shape);
                }
            }
            out.write(dst.resolve(Checkpoint.SINGLE_FILE));
        }
        Files.copy(fp8.resolve("config.json"), dst.resolve("config.json"));
    }

    private static float[] logits(Path dir, int[] seq) throws IOException {
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint cp = Checkpoint.open(dir, Fp8Loading.NATIVE);
             Transformer t = new ModelBuilder(config, cp, new VectorKernels(POOL)).build()) {
            float[] out = new float[seq.length * config.vocabSize()];
            t.forward(ForwardBatch.ofSequenceAllLogits(seq, 0, t.newCache(seq.length)), out);
            return out;
        }
    }

    private static int[] greedy(Path dir, int[] prompt, int steps) throws IOException {
        ModelConfig config = ModelConfig.load(dir);
        int vocab = config.vocabSize();
        int[] tokens = new int[steps];
        try (Checkpoint cp = Checkpoint.open(dir, Fp8Loading.NATIVE);
             Transformer t = new ModelBuilder(config, cp, new VectorKernels(POOL)).build()) {
            KvCache cache = t.newCache(prompt.length + steps);
            float[] logits = new float[vocab];
            t.forward(ForwardBatch.ofSequence(prompt, 0, cache, prompt.length - 1), logits);
            for (int i = 0; i < steps; i++) {
                int best = 0;
                for (int v = 1; v < vocab; v++) {
                    if (logits[v] > logits[best]) {
                        best = v;
                    }
                }
                tokens[i] = best;
                t.forward(ForwardBatch.ofSequence(new int[] {best}, prompt.length + i, cache, 0), logits);
            }
        }
        return tokens;
    }

    static double maxLogProbDiff(float[] a, float[] b, int positions, int vocab) {
        double max = 0;
        for (int p = 0; p < positions; p++) {
            double[] la = logSoftmax(a, p * vocab, vocab);
            double[] lb = logSoftmax(b, p * vocab, vocab);
            for (int i = 0; i < vocab; i++) {
                max = Math.max(max, Math.abs(la[i] - lb[i]));
            }
        }
        return max;
    }

    /** Largest difference of the log-probability of each position's top token (by {@code a}). */
    static double maxTop1Diff(float[] a, float[] b, int positions, int vocab) {
        double max = 0;
        for (int p = 0; p < positions; p++) {
            double[] la = logSoftmax(a, p * vocab, vocab);
            double[] lb = logSoftmax(b, p * vocab, vocab);
            int best = 0;
            for (int i = 1; i < vocab; i++) {
                best = la[i] > la[best] ? i : best;
            }
            max = Math.max(max, Math.abs(la[best] - lb[best]));
        }
        return max;
    }

    static double[] logSoftmax(float[] x, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        double z = 0;
        for (int i = 0; i < n; i++) {
            z += Math.exp(x[off + i] - max);
        }
        double lz = Math.log(z) + max;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = x[off + i] - lz;
        }
        return out;
    }

    private static int[] ids(JsonNode n) {
        int[] out = new int[n.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = n.get(i).asInt();
        }
        return out;
    }
}
