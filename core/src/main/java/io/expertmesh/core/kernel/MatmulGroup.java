package io.expertmesh.core.kernel;

import io.expertmesh.core.tensor.Matrix;
import java.util.Arrays;

/**
 * Independent matrix products to run as one parallel step ({@link Kernels#matmuls}): the projections that share
 * an input (q_a and kv_a, an MLP's gate and up), the per-head products of MLA, the experts of a layer. At decode
 * each product is tens of microseconds; running them as one step wakes the pool once instead of once each and
 * keeps both cores streaming weights. Reusable: {@link #clear()} and refill; owned by one thread at a time.
 */
public final class MatmulGroup {
    Matrix[] w = new Matrix[8];
    float[][] x = new float[8][];
    int[] xOff = new int[8];
    float[][] out = new float[8][];
    int[] outOff = new int[8];
    int[] batch = new int[8];
    int size;

    public MatmulGroup clear() {
        Arrays.fill(w, 0, size, null);
        Arrays.fill(x, 0, size, null);
        Arrays.fill(out, 0, size, null);
        size = 0;
        return this;
    }

    /** Adds {@code out[outOff + b·w.rows() + r] = Σ_c w[r][c]·x[xOff + b·w.cols() + c]}, as {@link Kernels#matmul}. */
    public MatmulGroup add(Matrix weight, float[] input, int inputOff, float[] output, int outputOff, int rows) {
        if (size == w.length) {
            int n = size * 2;
            w = Arrays.copyOf(w, n);
            x = Arrays.copyOf(x, n);
            xOff = Arrays.copyOf(xOff, n);
            out = Arrays.copyOf(out, n);
            outOff = Arrays.copyOf(outOff, n);
            batch = Arrays.copyOf(batch, n);
        }
        w[size] = weight;
        x[size] = input;
        xOff[size] = inputOff;
        out[size] = output;
        outOff[size] = outputOff;
        batch[size] = rows;
        size++;
        return this;
    }

    public int size() {
        return size;
    }
}
