package io.expertmesh.cuda.forward;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.forward.DeviceScratch.Slot;
import io.expertmesh.cuda.forward.DeviceWeights.MlpWeights;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An expert worker's experts on the device-grouped path ({@link DeviceExperts} over {@link DeviceMlps#routed})
 * against the path it replaced, experts grouped on the host and run one after another (zero the sums, then per
 * expert in ascending id: gather its tokens' rows, the MLP, scatter-add the weighted rows), both on HostOps: equal
 * bit for bit. The batch has several tokens per expert, held experts no token names, tokens with no choice and
 * tokens with fewer choices than others (padding), 45 tokens and a hidden width of 40 (neither a multiple of 32).
 */
class DeviceExpertsGroupingTest {
    private static final int HIDDEN = 40;
    private static final int INTER = 24;
    private static final int EXPERTS = 12;

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void groupedOnTheDevice_sameBitsAsPerExpertOnTheHost(DType dtype) {
        Random rnd = new Random(23);
        Mlp[] held = new Mlp[EXPERTS];
        for (int e : new int[]{0, 1, 3, 4, 6, 7, 8, 10, 11}) {
            held[e] = mlp(dtype, rnd, e);
        }
        // Experts 4 and 8 are held but no token names them.
        List<Integer> named = List.of(0, 1, 3, 6, 7, 10, 11);
        int tokens = 45;
        int[] offsets = new int[tokens + 1];
        List<Integer> ids = new ArrayList<>();
        for (int t = 0; t < tokens; t++) {
            List<Integer> pool = new ArrayList<>(named);
            Collections.shuffle(pool, rnd);
            int count = t % 9 == 4 ? 0 : 1 + rnd.nextInt(4);   // some tokens name no expert
            ids.addAll(pool.subList(0, count));                 // in no particular order
            offsets[t + 1] = ids.size();
        }
        int[] idArray = ids.stream().mapToInt(Integer::intValue).toArray();
        float[] w = new float[idArray.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = rnd.nextFloat();
        }
        float[] xn = new float[tokens * HIDDEN];
        for (int i = 0; i < xn.length; i++) {
            xn[i] = (float) rnd.nextGaussian();
        }
        float[] start = new float[tokens * HIDDEN];
        for (int i = 0; i < start.length; i++) {
            start[i] = (float) rnd.nextGaussian();   // the runner adds into what out holds
        }

        float[] want = start.clone();
        perExpertOnTheHost(held, xn, tokens, offsets, idArray, w, want);
        float[] got = start.clone();
        CountingOps ops = new CountingOps(new HostOps(), false);
        try (DeviceExperts device = new DeviceExperts(ops)) {
            ExpertRunner runner = device.create(1, held, HIDDEN);
            var before = ops.counts();
            runner.run(xn, tokens, offsets, idArray, w, got, null);
            var call = ops.counts().minus(before);
            assertEquals(7, call.launches(), call.toString());
            assertEquals(3, call.copiesToDevice(), call.toString());
            assertEquals(1, call.copiesToHost(), call.toString());
            assertEquals(1, call.syncs(), call.toString());
        }
        assertArrayEquals(want, got);
        boolean moved = false;
        for (int i = 0; i < got.length; i++) {
            moved |= got[i] != start[i];
        }
        assertTrue(moved, "the experts added nothing");
    }

    @Test
    void runnerMadeBeforeALoad_refusesToRunOnFreedWeights() {
        DType dtype = DType.F32;
        Random rnd = new Random(5);
        Mlp[] held = new Mlp[EXPERTS];
        held[2] = mlp(dtype, rnd, 2);
        try (DeviceExperts device = new DeviceExperts(new HostOps())) {
            ExpertRunner old = device.create(1, held, HIDDEN);
            held[5] = mlp(dtype, rnd, 5);
            ExpertRunner now = device.create(1, held, HIDDEN);
            float[] out = new float[HIDDEN];
            now.run(new float[HIDDEN], 1, new int[]{0, 2}, new int[]{5, 2}, new float[]{1f, 1f}, out, null);
            assertThrows(IllegalStateException.class, () -> old.run(new float[HIDDEN], 1, new int[]{0, 1},
                    new int[]{2}, new float[]{1f}, out, null));
            assertTrue(device.describe().startsWith("2 experts"), device.describe());
        }
    }

    /** The former DeviceExperts path: pairs grouped on the host, six launches per active expert. */
    private static void perExpertOnTheHost(Mlp[] experts, float[] xn, int tokens, int[] offsets, int[] ids,
                                           float[] w, float[] out) {
        try (HostOps ops = new HostOps(); DeviceScratch s = new DeviceScratch(ops)) {
            int size = tokens * HIDDEN;
            DeviceTensor x = s.f32(Slot.X, size);
            DeviceTensor sum = s.f32(Slot.FFN_OUT, size);
            ops.copyIn(xn, 0, x, 0, size);
            ops.zero(sum, size);
            DeviceTensor idx = s.i32(Slot.ROUTE_IDX, tokens);
            DeviceTensor rw = s.f32(Slot.ROUTE_W, tokens);
            for (int e = 0; e < experts.length; e++) {
                int[] rows = new int[tokens];
                float[] rowW = new float[tokens];
                int count = 0;
                for (int t = 0; t < tokens; t++) {
                    for (int i = offsets[t]; i < offsets[t + 1]; i++) {
                        if (ids[i] == e) {
                            rows[count] = t;
                            rowW[count++] = w[i];
                        }
                    }
                }
                if (count == 0) {
                    continue;
                }
                ops.copyIn(rows, idx, count);
                ops.copyIn(rowW, 0, rw, 0, count);
                Mlp m = experts[e];
                MlpWeights mw = new MlpWeights(ops.upload(m.gate()), ops.upload(m.up()), ops.upload(m.down()),
                        m.intermediate());
                DeviceTensor in = s.f32(Slot.EXPERT_IN, (long) count * HIDDEN);
                DeviceTensor y = s.f32(Slot.EXPERT_OUT, (long) count * HIDDEN);
                ops.gatherRows(x, idx, 0, in, count, HIDDEN);
                DeviceMlps.forward(ops, s, mw, in, y, count, HIDDEN);
                ops.scatterAddRows(y, idx, rw, 0, sum, count, HIDDEN);
            }
            float[] result = new float[size];
            ops.copyOut(sum, 0, result, 0, size);
            for (int i = 0; i < size; i++) {
                out[i] += result[i];
            }
        }
    }

    private static Mlp mlp(DType dtype, Random rnd, int e) {
        return new Mlp(matrix(dtype, rnd, "gate" + e, INTER, HIDDEN), matrix(dtype, rnd, "up" + e, INTER, HIDDEN),
                matrix(dtype, rnd, "down" + e, HIDDEN, INTER));
    }

    private static Matrix matrix(DType dtype, Random rnd, String name, int rows, int cols) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextGaussian() / Math.sqrt(cols));
        }
        if (dtype == DType.F32) {
            return new Matrix(name, dtype, rows, cols, MemorySegment.ofArray(v));
        }
        short[] b = new short[v.length];
        for (int i = 0; i < v.length; i++) {
            b[i] = (short) (Float.floatToRawIntBits(v[i]) >>> 16);
        }
        return new Matrix(name, dtype, rows, cols, MemorySegment.ofArray(b));
    }
}
