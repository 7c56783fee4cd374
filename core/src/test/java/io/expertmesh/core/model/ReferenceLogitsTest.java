package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.ScalarKernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.safetensors.Checkpoint;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every fixture model against its reference logits (DeepSeek's own code for deepseek-v3-tiny; the torch
 * references under tools/reference for the others): every prefill position and every decode step within 1e-3,
 * greedy tokens identical, with the scalar and the vector kernels.
 */
class ReferenceLogitsTest {
    static final Path FIXTURES = Path.of("src/test/resources/fixtures");
    static final ComputePool POOL = ComputePool.create(2);

    static Stream<Arguments> fixtures() {
        Stream<String> names = Stream.of("deepseek-v3-tiny/f32", "deepseek-v3-tiny/bf16", "deepseek-v3-qlora0",
                "deepseek-v3-groups4", "deepseek-v3-noyarn", "deepseek-v3-long-yarn", "mixtral-tiny",
                "qwen2-moe-tiny", "qwen3-moe-tiny");
        // Every fixture must carry its reference: a missing reference.json fails the test that reads it rather than
        // silently dropping the model family from the check.
        return names.flatMap(n -> Stream.of(Arguments.of(n, "scalar"), Arguments.of(n, "vector")));
    }

    @AfterAll
    static void closePool() {
        POOL.close();
    }

    static Kernels kernels(String kind) {
        return kind.equals("scalar") ? new ScalarKernels(POOL) : new VectorKernels(POOL);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("fixtures")
    void forward_fixture_matchesReferenceLogitsAndGreedyTokens(String fixture, String kernels) throws Exception {
        Path dir = FIXTURES.resolve(fixture);
        ModelConfig config = ModelConfig.load(dir);
        JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
        int vocab = config.vocabSize();
        try (Checkpoint weights = TestWeights.open(dir);
             Transformer model = new ModelBuilder(config, weights, kernels(kernels)).build()) {
            int[] prompt = ids(ref.get("prompt_ids"));
            JsonNode greedy = ref.get("greedy_tokens");
            KvCache cache = model.newCache(prompt.length + greedy.size());
            float[] logits = new float[prompt.length * vocab];
            model.forward(ForwardBatch.ofSequenceAllLogits(prompt, 0, cache), logits);
            for (int i = 0; i < prompt.length; i++) {
                assertClose(ref.get("prefill").get("positions").get(i).get("logits"), logits, i * vocab,
                        fixture + " prefill position " + i);
            }
            assertEquals(greedy.get(0).asInt(), argmax(logits, (prompt.length - 1) * vocab, vocab),
                    "first greedy token");

            float[] step = new float[vocab];
            JsonNode decode = ref.get("decode");
            for (int i = 0; i < decode.size(); i++) {
                int token = decode.get(i).get("input_id").asInt();
                assertEquals(greedy.get(i).asInt(), token, "reference feeds its own greedy tokens");
                model.forward(ForwardBatch.ofSequence(new int[]{token}, prompt.length + i, cache, 0), step);
                assertClose(decode.get(i).get("logits"), step, 0, fixture + " decode step " + i);
                if (i + 1 < greedy.size()) {
                    assertEquals(greedy.get(i + 1).asInt(), argmax(step, 0, vocab), "greedy token " + (i + 1));
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("fixtures")
    void forward_promptAsOneBatch_equalsTokenByTokenBitForBit(String fixture, String kernels) throws Exception {
        Path dir = FIXTURES.resolve(fixture);
        ModelConfig config = ModelConfig.load(dir);
        JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
        int vocab = config.vocabSize();
        int[] prompt = ids(ref.get("prompt_ids"));
        try (Checkpoint weights = TestWeights.open(dir);
             Transformer model = new ModelBuilder(config, weights, kernels(kernels)).build()) {
            float[] batched = new float[prompt.length * vocab];
            model.forward(ForwardBatch.ofSequenceAllLogits(prompt, 0, model.newCache(prompt.length)), batched);
            KvCache cache = model.newCache(prompt.length);
            float[] single = new float[prompt.length * vocab];
            float[] step = new float[vocab];
            for (int i = 0; i < prompt.length; i++) {
                model.forward(ForwardBatch.ofSequence(new int[]{prompt[i]}, i, cache, 0), step);
                System.arraycopy(step, 0, single, i * vocab, vocab);
            }
            assertArrayEquals(single, batched, fixture + ": a batch of B tokens must equal B single steps");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("fixtures")
    void forward_twoSequencesInOneBatch_eachEqualsItsSoloRunBitForBit(String fixture, String kernels)
            throws Exception {
        Path dir = FIXTURES.resolve(fixture);
        ModelConfig config = ModelConfig.load(dir);
        JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
        int vocab = config.vocabSize();
        int[] a = ids(ref.get("prompt_ids"));
        int[] b = new java.util.Random(5).ints(a.length + 3, 0, vocab).toArray();
        try (Checkpoint weights = TestWeights.open(dir);
             Transformer model = new ModelBuilder(config, weights, kernels(kernels)).build()) {
            float[] soloA = new float[a.length * vocab];
            model.forward(ForwardBatch.ofSequenceAllLogits(a, 0, model.newCache(a.length)), soloA);
            float[] soloB = new float[b.length * vocab];
            model.forward(ForwardBatch.ofSequenceAllLogits(b, 0, model.newCache(b.length)), soloB);

            // B's tokens first, then A's, interleaved caches: rows must not mix.
            int n = a.length + b.length;
            int[] tokens = new int[n];
            int[] pos = new int[n];
            KvCache[] caches = new KvCache[n];
            int[] rows = new int[n];
            KvCache ca = model.newCache(a.length);
            KvCache cb = model.newCache(b.length);
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
            java.util.Arrays.setAll(rows, i -> i);
            float[] mixed = new float[n * vocab];
            model.forward(new ForwardBatch(tokens, pos, caches, rows), mixed);
            assertArrayEquals(soloB, java.util.Arrays.copyOfRange(mixed, 0, b.length * vocab), "sequence B");
            assertArrayEquals(soloA, java.util.Arrays.copyOfRange(mixed, b.length * vocab, n * vocab), "sequence A");
        }
    }

    static void assertClose(JsonNode expected, float[] actual, int off, String what) {
        double max = 0;
        int worst = -1;
        for (int v = 0; v < expected.size(); v++) {
            double d = Math.abs(expected.get(v).asDouble() - actual[off + v]);
            if (d > max) {
                max = d;
                worst = v;
            }
        }
        if (max > 1e-3) {
            throw new AssertionError(what + ": logit " + worst + " differs by " + max + " (expected "
                    + expected.get(worst).asDouble() + ", got " + actual[off + worst] + ")");
        }
    }

    static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[off + i] > x[off + best]) {
                best = i;
            }
        }
        return best;
    }

    static int[] ids(JsonNode n) {
        int[] a = new int[n.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = n.get(i).asInt();
        }
        return a;
    }
}
