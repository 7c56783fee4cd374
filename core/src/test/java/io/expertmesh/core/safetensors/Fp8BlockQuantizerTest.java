package io.expertmesh.core.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8E4M3;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Fp8BlockQuantizerTest {
    private static final String EXPERT = "model.layers.1.mlp.experts.0.up_proj.weight";
    private static final String ATTN = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";

    @TempDir
    Path tmp;

    /** Gaussian values whose magnitude differs by block, so each block scale matters. */
    private static float[] blocky(int rows, int cols, long seed) {
        float[] a = Files4Test.randomFloats(rows * cols, seed);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                a[r * cols + c] *= (float) Math.pow(10, (r / 128) - 2 * (c / 128));
            }
        }
        return a;
    }

    @Test
    void isQuantized_deepSeekRules_onlyLinearLayerWeights() {
        long[] m = {4, 4};
        assertTrue(Fp8BlockQuantizer.isQuantized(EXPERT, m));
        assertTrue(Fp8BlockQuantizer.isQuantized(ATTN, m));
        assertTrue(Fp8BlockQuantizer.isQuantized("model.layers.0.self_attn.q_b_proj.weight", m));
        assertTrue(Fp8BlockQuantizer.isQuantized("model.layers.0.mlp.down_proj.weight", m));
        assertTrue(Fp8BlockQuantizer.isQuantized("model.layers.5.mlp.shared_experts.gate_proj.weight", m));
        assertFalse(Fp8BlockQuantizer.isQuantized("model.layers.5.mlp.gate.weight", m));
        assertFalse(Fp8BlockQuantizer.isQuantized("model.layers.5.mlp.gate.e_score_correction_bias", new long[] {4}));
        assertFalse(Fp8BlockQuantizer.isQuantized("model.embed_tokens.weight", m));
        assertFalse(Fp8BlockQuantizer.isQuantized("lm_head.weight", m));
        assertFalse(Fp8BlockQuantizer.isQuantized("model.norm.weight", new long[] {4}));
        assertFalse(Fp8BlockQuantizer.isQuantized("model.layers.0.self_attn.kv_a_layernorm.weight", new long[] {4}));
        assertFalse(Fp8BlockQuantizer.isQuantized("model.layers.0.input_layernorm.weight", new long[] {4}));
    }

    @Test
    void quantize_matrix_errorWithinHalfStepOfE4M3TimesBlockScale() {
        int rows = 200;
        int cols = 300;
        float[] w = blocky(rows, cols, 11);
        try (Arena arena = Arena.ofConfined()) {
            Matrix m = new Matrix("w", DType.F32, rows, cols, arena.allocateFrom(ValueLayout.JAVA_FLOAT, w));
            Fp8BlockQuantizer.Quantized q = Fp8BlockQuantizer.quantize(m, arena);
            assertEquals(2, q.scaleRows());
            assertEquals(3, q.scaleCols());
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    float s = q.scaleInv()[(r / 128) * 3 + c / 128];
                    float x = w[r * cols + c];
                    float back = Fp8E4M3.toFloat(q.fp8().get(ValueLayout.JAVA_BYTE, (long) r * cols + c)) * s;
                    // 3 mantissa bits: half a step is 2^-4 relative for normals, 2^-10 · s absolute for subnormals.
                    double bound = Math.max(Math.abs(x) * 0x1p-4, s * 0x1p-10) * 1.0001;
                    assertTrue(Math.abs(back - x) <= bound, "at " + r + "," + c + ": " + x + " -> " + back);
                }
            }
            // the block amax lands on 448 exactly
            float amax = 0;
            for (int r = 0; r < 128; r++) {
                for (int c = 0; c < 128; c++) {
                    amax = Math.max(amax, Math.abs(w[r * cols + c]));
                }
            }
            assertEquals(amax / 448f, q.scaleInv()[0]);
        }
    }

    @Test
    void quantize_checkpoint_fp8LoadsBitForBitAsBf16Twin() throws Exception {
        Path src = tmp.resolve("bf16");
        Files.createDirectories(src);
        float[] expert = blocky(200, 300, 1);
        float[] attn = blocky(130, 257, 2);
        short[] expertBf16 = new short[expert.length];
        for (int i = 0; i < expert.length; i++) {
            expertBf16[i] = Bf16.fromFloat(expert[i]);
        }
        new SafetensorsWriter()
                .addBf16(EXPERT, expertBf16, 200, 300)
                .addF32(ATTN, attn, 130, 257)
                .addF32("model.embed_tokens.weight", Files4Test.randomFloats(64, 3), 8, 8)
                .addF32("model.layers.1.mlp.gate.weight", Files4Test.randomFloats(64, 4), 8, 8)
                .addF32("model.layers.1.mlp.gate.e_score_correction_bias", new float[8], 8)
                .addF32("model.norm.weight", new float[8], 8)
                .write(src.resolve("model.safetensors"));
        Files.writeString(src.resolve("config.json"), "{\"model_type\": \"deepseek_v3\"}");
        Files.writeString(src.resolve("tokenizer.json"), "{}");
        Path fp8 = tmp.resolve("fp8");
        Path twin = tmp.resolve("twin");
        Fp8BlockQuantizer.quantize(src, fp8, 2);
        Fp8BlockQuantizer.writeDequantizedTwin(fp8, twin);

        JsonNode qc = new ObjectMapper().readTree(fp8.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("fp8", qc.get("quant_method").asText());
        assertEquals("e4m3", qc.get("fmt").asText());
        assertEquals("dynamic", qc.get("activation_scheme").asText());
        assertEquals("[128,128]", qc.get("weight_block_size").toString());
        assertTrue(Files.exists(fp8.resolve("tokenizer.json")));
        assertTrue(Files.exists(fp8.resolve(Checkpoint.INDEX_FILE)));
        assertFalse(new ObjectMapper().readTree(twin.resolve("config.json").toFile()).has("quantization_config"));

        try (Checkpoint q = Checkpoint.open(fp8, Fp8Loading.DEQUANTIZE_BF16); Checkpoint t = Checkpoint.open(twin)) {
            assertEquals(DType.F8_E4M3, q.info(EXPERT).dtype());
            assertEquals(DType.F8_E4M3, q.info(ATTN).dtype());
            assertEquals(DType.F32, q.info(ATTN + "_scale_inv").dtype());
            assertEquals(2, q.info(EXPERT + "_scale_inv").shape()[0]);
            assertEquals(3, q.info(EXPERT + "_scale_inv").shape()[1]);
            assertEquals(DType.F32, q.info("model.embed_tokens.weight").dtype());
            assertEquals(DType.F32, q.info("model.layers.1.mlp.gate.weight").dtype());
            assertFalse(t.has(EXPERT + "_scale_inv"));
            assertEquals(DType.BF16, t.info(ATTN).dtype());
            assertBitsEqual(q.matrix(EXPERT, 200, 300), t.matrix(EXPERT, 200, 300));
            assertBitsEqual(q.matrix(ATTN, 130, 257), t.matrix(ATTN, 130, 257));
            assertBitsEqual(q.matrix("model.layers.1.mlp.gate.weight", 8, 8),
                    t.matrix("model.layers.1.mlp.gate.weight", 8, 8));
            Matrix m = q.matrix(ATTN, 130, 257);
            float[] scales = q.vector(ATTN + "_scale_inv", 6);
            for (int i = 0; i < attn.length; i += 97) {
                float x = attn[i];
                float scale = scales[(i / 257 / 128) * 3 + i % 257 / 128];
                double bound = (Math.abs(x) * 0x1p-4 + scale * 0x1p-10) * 1.01 + Math.abs(x) * 0x1p-8;
                assertTrue(Math.abs(m.get(i / 257, i % 257) - x) <= bound, "element " + i);
            }
        }
    }

    @Test
    void quantize_realTinyFixture_everyMatrixEqualsTwinAndKeepsDeepSeekExceptions() throws Exception {
        Path src = Path.of(getClass().getResource("/fixtures/deepseek-v3-tiny/bf16/model.safetensors").toURI())
                .getParent();
        Path fp8 = tmp.resolve("fp8");
        Path twin = tmp.resolve("twin");
        Fp8BlockQuantizer.quantize(src, fp8);
        Fp8BlockQuantizer.writeDequantizedTwin(fp8, twin);
        try (Checkpoint q = Checkpoint.open(fp8, Fp8Loading.DEQUANTIZE_BF16); Checkpoint t = Checkpoint.open(twin);
             Checkpoint orig = Checkpoint.open(src)) {
            int fp8Count = 0;
            for (String name : orig.names()) {
                TensorInfo info = orig.info(name);
                boolean quantized = q.info(name).dtype() == DType.F8_E4M3;
                assertEquals(Fp8BlockQuantizer.isQuantized(name, info.shape()), quantized, name);
                assertEquals(quantized, q.has(name + "_scale_inv"), name);
                if (info.rank() == 2) {
                    int rows = (int) info.shape()[0];
                    int cols = (int) info.shape()[1];
                    assertBitsEqual(q.matrix(name, rows, cols), t.matrix(name, rows, cols));
                    fp8Count += quantized ? 1 : 0;
                }
            }
            assertEquals(orig.names().size() + fp8Count, q.names().size());
            assertEquals(DType.BF16, q.info("model.embed_tokens.weight").dtype());
            assertEquals(DType.BF16, q.info("lm_head.weight").dtype());
            assertEquals(DType.BF16, q.info("model.layers.1.mlp.gate.weight").dtype());
            assertEquals(DType.F8_E4M3, q.info("model.layers.1.mlp.shared_experts.down_proj.weight").dtype());
        }
    }

    private static void assertBitsEqual(Matrix a, Matrix b) {
        assertEquals(a.dtype(), b.dtype(), a.name());
        assertEquals(a.byteSize(), b.byteSize(), a.name());
        assertEquals(-1, MemorySegment.mismatch(a.data(), 0, a.byteSize(), b.data(), 0, b.byteSize()), a.name());
    }
}
