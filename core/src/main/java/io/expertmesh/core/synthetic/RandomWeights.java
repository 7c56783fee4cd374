package io.expertmesh.core.synthetic;

import io.expertmesh.core.tensor.WeightSource;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Deterministic random weights of any requested shape, for the built-in default model and the benchmark model.
 * Each tensor's values depend only on its name and the seed, so the same model comes out on every machine.
 * Matrices are BF16 with standard deviation 1/√cols (activations stay O(1) through the layers); norm weights
 * are 1; gate biases are small. Every tensor handed out is remembered so it can be written to a checkpoint.
 */
public final class RandomWeights implements WeightSource, AutoCloseable {
    private final long seed;
    private final boolean gateBias;
    private final Arena arena = Arena.ofShared();
    private final Map<String, Object> issued = new LinkedHashMap<>();

    /**
     * @param seed     model seed
     * @param gateBias whether MoE gates have an {@code e_score_correction_bias} (DeepSeek-V3)
     */
    public RandomWeights(long seed, boolean gateBias) {
        this.seed = seed;
        this.gateBias = gateBias;
    }

    @Override
    public boolean has(String name) {
        if (name.endsWith("e_score_correction_bias")) {
            return gateBias;
        }
        return true;
    }

    @Override
    public synchronized Matrix matrix(String name, int rows, int cols) {
        Object known = issued.get(name);
        if (known instanceof Matrix m) {
            return m;
        }
        SplittableRandom rnd = random(name);
        long n = (long) rows * cols;
        MemorySegment seg = arena.allocate(n * 2, 64);
        double std = 1.0 / Math.sqrt(cols);
        for (long i = 0; i < n; i++) {
            seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat((float) (gaussian(rnd) * std)));
        }
        Matrix m = new Matrix(name, DType.BF16, rows, cols, seg);
        issued.put(name, m);
        return m;
    }

    @Override
    public synchronized float[] vector(String name, int length) {
        Object known = issued.get(name);
        if (known instanceof float[] v) {
            return v.clone();
        }
        float[] v = new float[length];
        if (name.endsWith("e_score_correction_bias")) {
            SplittableRandom rnd = random(name);
            for (int i = 0; i < length; i++) {
                v[i] = Bf16.round((float) (gaussian(rnd) * 0.05));
            }
        } else if (name.endsWith(".bias")) {
            SplittableRandom rnd = random(name);
            for (int i = 0; i < length; i++) {
                v[i] = Bf16.round((float) (gaussian(rnd) * 0.02));
            }
        } else {
            java.util.Arrays.fill(v, 1f);
        }
        issued.put(name, v);
        return v.clone();
    }

    /** Every tensor handed out so far, by name: {@link Matrix} or {@code float[]}. */
    public synchronized Map<String, Object> issued() {
        return new LinkedHashMap<>(issued);
    }

    private SplittableRandom random(String name) {
        long h = seed;
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            h = h * 0x100000001B3L ^ b;
        }
        return new SplittableRandom(h);
    }

    /** Sum of uniforms (Irwin–Hall, 4 terms): close enough to Gaussian and much cheaper per value. */
    private static double gaussian(SplittableRandom r) {
        return (r.nextDouble() + r.nextDouble() + r.nextDouble() + r.nextDouble() - 2.0) * Math.sqrt(3.0);
    }

    @Override
    public void close() {
        arena.close();
    }
}
