package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Int4Quantizer;
import io.expertmesh.core.tensor.Int8Quantizer;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tensor.Quantization;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A worker's experts with {@code --quantize int8|int4}: the runner reads int8 or int4 copies, kept across runner
 * rebuilds.
 */
class QuantizedExpertsTest {
    private static final int HIDDEN = 64;
    private static final int INTER = 32;

    private static Mlp[] experts(int n, Random rnd) {
        Mlp[] e = new Mlp[n];
        for (int i = 0; i < n; i++) {
            e[i] = new Mlp(LocalExpertsTest.random("g" + i, INTER, HIDDEN, rnd),
                    LocalExpertsTest.random("u" + i, INTER, HIDDEN, rnd), LocalExpertsTest.random("d" + i, HIDDEN,
                    INTER, rnd));
        }
        return e;
    }

    private static float[] run(ExpertRunner r, float[] x, int[] ids) {
        float[] w = new float[ids.length];
        Arrays.fill(w, 0.5f);
        float[] out = new float[HIDDEN];
        r.run(x, 1, new int[]{0, ids.length}, ids, w, out, LocalExpertsTest.ctx());
        return out;
    }

    @Test
    void cpuInt8_runsInt8CopiesOfTheHeldExperts_sameBitsAfterARebuild() {
        Random rnd = new Random(3);
        Mlp[] source = experts(4, rnd);
        float[] x = new float[HIDDEN];
        for (int i = 0; i < HIDDEN; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        Mlp[] manual = new Mlp[4];
        for (int e = 0; e < 4; e++) {
            Arena a = Arena.ofAuto();
            manual[e] = new Mlp(Int8Quantizer.quantize(source[e].gate(), 32, a),
                    Int8Quantizer.quantize(source[e].up(), 32, a), Int8Quantizer.quantize(source[e].down(), 32, a));
        }
        ExpertRunner.Factory factory = ExpertRunner.Factory.cpu(Quantization.INT8);
        assertSame(ExpertRunner.Factory.CPU, ExpertRunner.Factory.cpu(Quantization.NONE));
        Mlp[] held = {source[0], null, source[2], source[3]};
        ExpertRunner r1 = factory.create(5, held, HIDDEN);
        float[] first = run(r1, x, new int[]{0, 2, 3});
        assertArrayEquals(run(new LocalExperts(manual, HIDDEN), x, new int[]{0, 2, 3}), first);
        assertFalse(Arrays.equals(run(new LocalExperts(source, HIDDEN), x, new int[]{0, 2, 3}), first),
                "the runner must read the int8 copies, not the BF16/F32 source");
        // Expert 1 loaded, expert 3 dropped: a new runner, the kept experts' copies reused.
        ExpertRunner r2 = factory.create(5, new Mlp[]{source[0], source[1], source[2], null}, HIDDEN);
        float[] second = run(r2, x, new int[]{0, 1, 2});
        assertArrayEquals(run(new LocalExperts(manual, HIDDEN), x, new int[]{0, 1, 2}), second);
        Matrix kept = ((LocalExperts) r2).expert(0).gate();
        assertSame(((LocalExperts) r1).expert(0).gate(), kept, "a kept expert is not quantized again");
    }

    @Test
    void cpuInt4_runsInt4CopiesOfTheHeldExperts() {
        Random rnd = new Random(4);
        Mlp[] source = experts(3, rnd);
        float[] x = new float[HIDDEN];
        for (int i = 0; i < HIDDEN; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        Mlp[] manual = new Mlp[3];
        for (int e = 0; e < 3; e++) {
            Arena a = Arena.ofAuto();
            manual[e] = new Mlp(Int4Quantizer.quantize(source[e].gate(), 32, a),
                    Int4Quantizer.quantize(source[e].up(), 32, a), Int4Quantizer.quantize(source[e].down(), 32, a));
        }
        ExpertRunner r = ExpertRunner.Factory.cpu(Quantization.INT4).create(2, source, HIDDEN);
        assertEquals(DType.I4, ((LocalExperts) r).expert(1).down().dtype());
        float[] out = run(r, x, new int[]{0, 1, 2});
        assertArrayEquals(run(new LocalExperts(manual, HIDDEN), x, new int[]{0, 1, 2}), out);
        assertFalse(Arrays.equals(run(ExpertRunner.Factory.cpu(Quantization.INT8).create(2, source, HIDDEN), x,
                new int[]{0, 1, 2}), out), "int4, not int8");
    }

    @Test
    void withACacheDir_aRestartedWorkerMapsEachExpertsCopies_sameBits(@org.junit.jupiter.api.io.TempDir
                                                                        java.nio.file.Path dir) {
        Random rnd = new Random(6);
        Mlp[] source = experts(3, rnd);
        float[] x = new float[HIDDEN];
        for (int i = 0; i < HIDDEN; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        String id = "c".repeat(64);
        Mlp[] held = {source[0], null, source[2]};
        ExpertRunner first = ExpertRunner.Factory.cpu(Quantization.INT4, dir, id).create(7, held, HIDDEN);
        float[] expected = run(ExpertRunner.Factory.cpu(Quantization.INT4).create(7, held, HIDDEN), x,
                new int[]{0, 2});
        assertArrayEquals(expected, run(first, x, new int[]{0, 2}));
        assertTrue(java.nio.file.Files.isRegularFile(dir.resolve("L7-E0.emq")));
        assertTrue(java.nio.file.Files.isRegularFile(dir.resolve("L7-E2.emq")));
        assertFalse(java.nio.file.Files.exists(dir.resolve("L7-E1.emq")), "an expert not held is not written");
        // A new factory: the worker restarted. Its copies come from the files, mapped, with the same bits.
        ExpertRunner again = ExpertRunner.Factory.cpu(Quantization.INT4, dir, id).create(7, held, HIDDEN);
        assertTrue(((LocalExperts) again).expert(2).down().data().isMapped(), "mapped from the file");
        assertArrayEquals(expected, run(again, x, new int[]{0, 2}));
        // Another model's identity never reads them.
        ExpertRunner other = ExpertRunner.Factory.cpu(Quantization.INT4, dir, "d".repeat(64)).create(7, held, HIDDEN);
        assertFalse(((LocalExperts) other).expert(2).down().data().isMapped());
    }
}
