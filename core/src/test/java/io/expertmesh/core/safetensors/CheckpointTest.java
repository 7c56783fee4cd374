package io.expertmesh.core.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8E4M3;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
    private static final String W = "model.layers.3.mlp.gate.weight";

    @TempDir
    Path tmp;

    private static short[] bf16(float[] a) {
        short[] out = new short[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = Bf16.fromFloat(a[i]);
        }
        return out;
    }

    private static Path fixture(String variant) throws URISyntaxException {
        return Path.of(CheckpointTest.class.getResource("/fixtures/deepseek-v3-tiny/" + variant + "/model.safetensors")
                .toURI()).getParent();
    }

    @Test
    void matrix_f32AndBf16_zeroCopySlicesOfTheFile() {
        float[] a = Files4Test.randomFloats(12, 1);
        new SafetensorsWriter().addF32("a", a, 3, 4).addBf16("b", bf16(a), 4, 3).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            Matrix ma = cp.matrix("a", 3, 4);
            Matrix mb = cp.matrix("b", 4, 3);
            assertEquals(DType.F32, ma.dtype());
            assertEquals(DType.BF16, mb.dtype());
            assertTrue(ma.data().isMapped() && mb.data().isMapped());
            assertEquals(a[1 * 4 + 2], ma.get(1, 2));
            assertEquals(Bf16.round(a[3 * 3 + 1]), mb.get(3, 1));
            assertEquals(tmp, cp.dir());
            assertEquals(tmp.resolve("model.safetensors"), cp.info("a").file());
        }
    }

    @Test
    void open_shardedWithIndex_readsEveryTensorFromItsShard() {
        SafetensorsWriter w = new SafetensorsWriter();
        for (int i = 0; i < 7; i++) {
            w.addF32("t" + i, Files4Test.randomFloats(10 * (i + 1), i), i + 1, 10);
        }
        w.writeSharded(tmp, 3);
        assertTrue(Files.exists(tmp.resolve("model-00003-of-00003.safetensors")));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            assertEquals(7, cp.names().size());
            for (int i = 0; i < 7; i++) {
                float[] expect = Files4Test.randomFloats(10 * (i + 1), i);
                assertArrayEquals(expect, cp.vector("t" + i, expect.length));
                assertEquals(expect[expect.length - 1], cp.matrix("t" + i, i + 1, 10).get(i, 9));
            }
            assertEquals(tmp.resolve("model-00001-of-00003.safetensors"), cp.info("t0").file());
            assertEquals(tmp.resolve("model-00003-of-00003.safetensors"), cp.info("t6").file());
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> cp.matrix(W, 1, 1));
            assertEquals("tensor " + W + " not found in any shard listed by " + tmp.resolve(Checkpoint.INDEX_FILE),
                    e.getMessage());
        }
    }

    @Test
    void open_strayFileBesideModelSafetensors_readsOnlyModelSafetensors() {
        new SafetensorsWriter().addF32("a", new float[] {1}, 1).write(tmp.resolve(Checkpoint.SINGLE_FILE));
        // the same weights in another layout, as Mistral ships consolidated.safetensors: a duplicate and a foreign name
        new SafetensorsWriter().addF32("a", new float[] {9}, 1).addF32("tok_embeddings.weight", new float[] {9}, 1)
                .write(tmp.resolve("consolidated.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            assertEquals(java.util.Set.of("a"), cp.names());
            assertArrayEquals(new float[] {1}, cp.vector("a", 1));
            assertEquals(tmp.resolve(Checkpoint.SINGLE_FILE), cp.info("a").file());
        }
    }

    @Test
    void open_strayFileBesideIndexedShards_readsOnlyTheIndexedShards() {
        SafetensorsWriter w = new SafetensorsWriter();
        for (int i = 0; i < 4; i++) {
            w.addF32("t" + i, new float[] {i}, 1);
        }
        w.writeSharded(tmp, 2);
        new SafetensorsWriter().addF32("t0", new float[] {9}, 1).addF32("output.weight", new float[] {9}, 1)
                .write(tmp.resolve("consolidated.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            assertEquals(java.util.Set.of("t0", "t1", "t2", "t3"), cp.names());
            assertArrayEquals(new float[] {0}, cp.vector("t0", 1));
        }
    }

    @Test
    void open_onlyOtherSafetensorsFiles_throwsNamingTheExpectedFilesAndTheUnreadOnes() {
        new SafetensorsWriter().addF32("a", new float[] {1}, 1).write(tmp.resolve("consolidated.safetensors"));
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> Checkpoint.open(tmp));
        assertEquals("no " + Checkpoint.SINGLE_FILE + " or " + Checkpoint.INDEX_FILE + " in " + tmp
                + " (not read: consolidated.safetensors; a sharded checkpoint needs its index)", e.getMessage());
    }

    @Test
    void open_emptyDirectory_throwsNamingDirectory() {
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> Checkpoint.open(tmp));
        assertTrue(e.getMessage().contains(tmp.toString()), e.getMessage());
    }

    @Test
    void open_indexPointsToMissingShard_throwsNamingShardTensorAndIndex() throws Exception {
        new SafetensorsWriter().addF32("a", new float[] {1}, 1).addF32(W, new float[] {2}, 1).writeSharded(tmp, 2);
        Files.delete(tmp.resolve("model-00002-of-00002.safetensors"));
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> Checkpoint.open(tmp));
        assertTrue(e.getMessage().contains(tmp.resolve("model-00002-of-00002.safetensors").toString()),
                e.getMessage());
        assertTrue(e.getMessage().contains(W), e.getMessage());
        assertTrue(e.getMessage().contains(tmp.resolve(Checkpoint.INDEX_FILE).toString()), e.getMessage());
    }

    @Test
    void matrix_missingTensor_throwsNamingTensorAndFile() {
        new SafetensorsWriter().addF32("a", new float[] {1}, 1).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> cp.matrix(W, 8, 64));
            assertEquals("tensor " + W + " not found in " + tmp.resolve("model.safetensors"), e.getMessage());
            assertFalse(cp.has(W));
        }
    }

    @Test
    void matrix_wrongShape_throwsExpectedAndFound() {
        new SafetensorsWriter().addF32(W, new float[8 * 64], 8, 64).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> cp.matrix(W, 64, 8));
            assertEquals("tensor " + W + " in " + tmp.resolve("model.safetensors")
                    + ": expected shape [64, 8], found [8, 64]", e.getMessage());
            ModelLoadException v = assertThrows(ModelLoadException.class, () -> cp.vector(W, 64));
            assertTrue(v.getMessage().contains("expected shape [64], found [8, 64]"), v.getMessage());
        }
    }

    @Test
    void matrix_unsupportedDtype_throwsNamingTensorFileAndDtype() {
        new SafetensorsWriter().add("ids", "I64", new byte[16], 2, 1).add("w64", "F64", new byte[16], 1, 2)
                .write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            assertTrue(cp.has("ids"));
            for (String name : new String[] {"ids", "w64"}) {
                ModelLoadException e = assertThrows(ModelLoadException.class,
                        () -> cp.matrix(name, name.equals("ids") ? 2 : 1, name.equals("ids") ? 1 : 2));
                assertTrue(e.getMessage().startsWith("tensor " + name + " in " + tmp.resolve("model.safetensors")),
                        e.getMessage());
                assertTrue(e.getMessage().contains(name.equals("ids") ? "I64" : "F64"), e.getMessage());
            }
        }
    }

    @Test
    void matrix_f16_convertedOnceToF32() {
        float[] a = Files4Test.randomFloats(6, 3);
        short[] h = new short[6];
        for (int i = 0; i < 6; i++) {
            h[i] = Float.floatToFloat16(a[i]);
        }
        new SafetensorsWriter().addF16("h", h, 2, 3).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            Matrix m = cp.matrix("h", 2, 3);
            assertEquals(DType.F32, m.dtype());
            assertFalse(m.data().isMapped());
            for (int i = 0; i < 6; i++) {
                assertEquals(Float.float16ToFloat(h[i]), m.get(i / 3, i % 3));
            }
            assertSame(m, cp.matrix("h", 2, 3));
            assertEquals(DType.F16, cp.info("h").dtype());
        }
    }

    @Test
    void vector_everyDtype_copiesAsFloat32() {
        float[] a = {1.5f, -2.25f, 3e-3f};
        short[] h = new short[3];
        for (int i = 0; i < 3; i++) {
            h[i] = Float.floatToFloat16(a[i]);
        }
        new SafetensorsWriter().addF32("f", a, 3).addBf16("b", bf16(a), 3).addF16("h", h, 3)
                .write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            assertArrayEquals(a, cp.vector("f", 3));
            assertArrayEquals(new float[] {1.5f, -2.25f, Bf16.round(3e-3f)}, cp.vector("b", 3));
            assertArrayEquals(new float[] {1.5f, -2.25f, Float.float16ToFloat(Float.floatToFloat16(3e-3f))},
                    cp.vector("h", 3));
        }
    }

    @Test
    void matrix_fp8WithBlockScales_dequantizedToBf16PerBlock() {
        int rows = 200;
        int cols = 300;
        byte[] q = new byte[rows * cols];
        SplittableRandom rnd = new SplittableRandom(5);
        for (int i = 0; i < q.length; i++) {
            q[i] = (byte) (rnd.nextInt(255) == 0x7F ? 0 : rnd.nextInt(256) & 0xF7); // no NaN patterns
        }
        float[] scales = {0.5f, 1e-3f, 3f, 0.25f, 7f, 1.1f}; // [2, 3] blocks
        String name = "model.layers.3.mlp.experts.7.up_proj.weight";
        new SafetensorsWriter().add(name, "F8_E4M3", q, rows, cols)
                .addF32(name + Checkpoint.SCALE_SUFFIX, scales, 2, 3).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp, Fp8Loading.DEQUANTIZE_BF16)) {
            assertTrue(cp.names().contains(name + Checkpoint.SCALE_SUFFIX));
            assertTrue(cp.has(name + Checkpoint.SCALE_SUFFIX));
            assertEquals(DType.F8_E4M3, cp.info(name).dtype());
            Matrix m = cp.matrix(name, rows, cols);
            assertEquals(DType.BF16, m.dtype());
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    float expect = Fp8E4M3.toFloat(q[r * cols + c]) * scales[(r / 128) * 3 + c / 128];
                    short bits = m.data().getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, (long) r * cols + c);
                    assertEquals(Bf16.fromFloat(expect), bits, "at " + r + "," + c);
                }
            }
            assertSame(m, cp.matrix(name, rows, cols));
        }
    }

    @Test
    void matrix_fp8WithBlockScales_nativeByDefault_mappedBytesAndExactValues() {
        int rows = 200;
        int cols = 300;
        byte[] q = new byte[rows * cols];
        SplittableRandom rnd = new SplittableRandom(6);
        for (int i = 0; i < q.length; i++) {
            byte b = (byte) rnd.nextInt(256);
            q[i] = Fp8E4M3.isNaN(b) ? 0 : b;
        }
        float[] scales = {0.5f, 1e-3f, 3f, 0.25f, 7f, 1.1f};
        String name = "model.layers.3.mlp.experts.7.up_proj.weight";
        new SafetensorsWriter().add(name, "F8_E4M3", q, rows, cols)
                .addF32(name + Checkpoint.SCALE_SUFFIX, scales, 2, 3).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            Matrix m = cp.matrix(name, rows, cols);
            assertEquals(DType.F8_E4M3, m.dtype());
            assertEquals(cp.raw(name).address(), m.data().address(), "a slice of the mapping, not a copy");
            assertEquals((long) rows * cols + 6 * Float.BYTES, m.byteSize());
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    float expect = Fp8E4M3.toFloat(q[r * cols + c]) * scales[(r / 128) * 3 + c / 128];
                    assertEquals(Float.floatToRawIntBits(expect), Float.floatToRawIntBits(m.get(r, c)),
                            "at " + r + "," + c);
                }
            }
            assertSame(m, cp.matrix(name, rows, cols));
        }
    }

    @Test
    void matrix_fp8HoldingANaNCode_throwsNamingTensorFileAndPosition() {
        String name = "model.layers.0.mlp.down_proj.weight";
        byte[] q = new byte[3 * 70];
        q[2 * 70 + 9] = (byte) 0xFF;
        new SafetensorsWriter().add(name, "F8_E4M3", q, 3, 70).addF32(name + "_scale_inv", new float[] {1f}, 1, 1)
                .write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> cp.matrix(name, 3, 70));
            assertTrue(e.getMessage().startsWith("tensor " + name + " in " + tmp.resolve("model.safetensors")),
                    e.getMessage());
            assertTrue(e.getMessage().contains("0xff at [2, 9]"), e.getMessage());
        }
        try (Checkpoint cp = Checkpoint.open(tmp, Fp8Loading.DEQUANTIZE_BF16)) {
            assertTrue(Float.isNaN(cp.matrix(name, 3, 70).get(2, 9)), "the old path keeps NaN as it did");
        }
    }

    @Test
    void matrix_fp8WithANonFiniteScale_throwsNamingTheScaleTensor() {
        String name = "model.layers.0.mlp.down_proj.weight";
        new SafetensorsWriter().add(name, "F8_E4M3", new byte[4], 2, 2)
                .addF32(name + "_scale_inv", new float[] {Float.POSITIVE_INFINITY}, 1, 1)
                .write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> cp.matrix(name, 2, 2));
            assertTrue(e.getMessage().startsWith("tensor " + name + "_scale_inv in "), e.getMessage());
        }
    }

    @Test
    void matrix_fp8ScaleBeyondTheFoldableRange_fallsBackToBf16() {
        String name = "model.layers.0.mlp.down_proj.weight";
        new SafetensorsWriter().add(name, "F8_E4M3", new byte[] {0x38, 0, 0, 0}, 2, 2)
                .addF32(name + "_scale_inv", new float[] {512f}, 1, 1).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            Matrix m = cp.matrix(name, 2, 2);
            assertEquals(DType.BF16, m.dtype());
            assertEquals(512f, m.get(0, 0));
        }
    }

    @Test
    void matrix_fp8WithoutScale_throwsNamingTensorAndScale() {
        String name = "model.layers.3.mlp.experts.7.up_proj.weight";
        new SafetensorsWriter().add(name, "F8_E4M3", new byte[4], 2, 2).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> cp.matrix(name, 2, 2));
            assertTrue(e.getMessage().startsWith("tensor " + name + " in " + tmp.resolve("model.safetensors")),
                    e.getMessage());
            assertTrue(e.getMessage().contains(name + "_scale_inv"), e.getMessage());
        }
    }

    @Test
    void matrix_fp8ScaleOfWrongShape_throwsExpectedAndFound() {
        String name = "model.layers.0.self_attn.o_proj.weight";
        new SafetensorsWriter().add(name, "F8_E4M3", new byte[200 * 130], 200, 130)
                .addF32(name + "_scale_inv", new float[2], 1, 2).write(tmp.resolve("model.safetensors"));
        try (Checkpoint cp = Checkpoint.open(tmp)) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> cp.matrix(name, 200, 130));
            assertTrue(e.getMessage().contains("expected shape [2, 2]") && e.getMessage().contains("found [1, 2]"),
                    e.getMessage());
        }
    }

    @Test
    void close_afterClose_accessFails() {
        new SafetensorsWriter().addF32("a", new float[] {1}, 1, 1).write(tmp.resolve("model.safetensors"));
        Checkpoint cp = Checkpoint.open(tmp);
        Matrix m = cp.matrix("a", 1, 1);
        cp.close();
        cp.close();
        assertThrows(IllegalStateException.class, () -> cp.matrix("a", 1, 1));
        assertThrows(IllegalStateException.class, () -> m.get(0, 0));
    }

    @Test
    void open_realTinyFixture_bf16EqualsF32RoundedToBf16() throws Exception {
        try (Checkpoint f32 = Checkpoint.open(fixture("f32")); Checkpoint bf16 = Checkpoint.open(fixture("bf16"))) {
            assertEquals(f32.names(), bf16.names());
            assertEquals(91, bf16.names().size());
            int matrices = 0;
            for (String name : bf16.names()) {
                long[] shape = bf16.info(name).shape();
                if (shape.length != 2) {
                    float[] a = f32.vector(name, (int) shape[0]);
                    float[] b = bf16.vector(name, (int) shape[0]);
                    for (int i = 0; i < a.length; i++) {
                        assertEquals(bf16.info(name).dtype() == DType.F32 ? a[i] : Bf16.round(a[i]), b[i], name);
                    }
                    continue;
                }
                Matrix a = f32.matrix(name, (int) shape[0], (int) shape[1]);
                Matrix b = bf16.matrix(name, (int) shape[0], (int) shape[1]);
                for (int r = 0; r < a.rows(); r++) {
                    for (int c = 0; c < a.cols(); c++) {
                        assertEquals(Bf16.round(a.get(r, c)), b.get(r, c), name);
                    }
                }
                matrices++;
            }
            assertTrue(matrices > 50);
            assertEquals(DType.F32, bf16.info("model.layers.1.mlp.gate.e_score_correction_bias").dtype());
        }
    }
}
