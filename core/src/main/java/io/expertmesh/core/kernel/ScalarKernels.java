package io.expertmesh.core.kernel;

import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;

/** Plain-loop reference implementation of {@link Kernels}: the definition the fast paths are tested against. */
public final class ScalarKernels implements Kernels {
    private final ComputePool pool;
    private final boolean nativeInt4;

    public ScalarKernels() {
        this(ComputePool.create(1));
    }

    public ScalarKernels(ComputePool pool) {
        this(pool, false);
    }

    private ScalarKernels(ComputePool pool, boolean nativeInt4) {
        this.pool = pool;
        this.nativeInt4 = nativeInt4;
    }

    /**
     * The reference of what {@link VectorKernels} computes where the native kernels run: int4 products that the
     * native kernel takes read the activations quantized to int8 per 32 columns ({@link Int8Activations}), as it
     * does (W4A8, llama.cpp's Q4_0 × Q8_0); every other product as {@link #ScalarKernels(ComputePool)}. Where the
     * native kernels do not run, the same as that one.
     */
    public static ScalarKernels forNativeKernels(ComputePool pool) {
        return new ScalarKernels(pool, NativeMatmul.available());
    }

    @Override
    public String matmulKind() {
        return "scalar";
    }

    @Override
    public ComputePool pool() {
        return pool;
    }

    @Override
    public void matmul(Matrix w, float[] x, int xOff, float[] out, int outOff, int batch) {
        matmulRows(w, 0, w.rows(), x, xOff, out, outOff, batch);
    }

    @Override
    public void matmulRows(Matrix w, int rowFrom, int rowTo, float[] x, int xOff, float[] out, int outOff,
                           int batch) {
        int n = w.rows();
        int k = w.cols();
        if (nativeInt4 && w.dtype() == DType.I4 && NativeMatmul.int4(n, k, w.block())) {
            byte[] q = new byte[k];
            float[] scales = new float[k / Int8Activations.BLOCK];
            for (int b = 0; b < batch; b++) {
                Int8Activations.quantize(x, xOff + b * k, k, q, scales);
                for (int r = rowFrom; r < rowTo; r++) {
                    out[outOff + b * n + r] = (float) Int8Activations.dot(w, r, q, scales);
                }
            }
            return;
        }
        for (int b = 0; b < batch; b++) {
            for (int r = rowFrom; r < rowTo; r++) {
                float acc = 0f;
                for (int c = 0; c < k; c++) {
                    acc += w.get(r, c) * x[xOff + b * k + c];
                }
                out[outOff + b * n + r] = acc;
            }
        }
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        float acc = 0f;
        for (int i = 0; i < n; i++) {
            acc += a[aOff + i] * b[bOff + i];
        }
        return acc;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }

    @Override
    public void rmsNorm(float[] x, int xOff, float[] weight, float eps, float[] out, int outOff, int n) {
        float ss = 0f;
        for (int i = 0; i < n; i++) {
            ss += x[xOff + i] * x[xOff + i];
        }
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) {
            out[outOff + i] = x[xOff + i] * inv * weight[i];
        }
    }

    @Override
    public void swiglu(float[] gate, int gateOff, float[] up, int upOff, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i++) {
            float g = gate[gateOff + i];
            out[outOff + i] = g / (1f + (float) Math.exp(-g)) * up[upOff + i];
        }
    }

    @Override
    public void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) {
            x[off + i] *= inv;
        }
    }

    @Override
    public void ropeInterleaved(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) {
        rotateInterleaved(x, off, dim, cos, sin, csOff);
    }

    /** Interleaved-pair rotation; also the vector kernels' implementation (adjacent pairs do not vectorise well). */
    static void rotateInterleaved(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) {
        for (int i = 0; i < dim / 2; i++) {
            float a = x[off + 2 * i];
            float b = x[off + 2 * i + 1];
            float c = cos[csOff + i];
            float s = sin[csOff + i];
            x[off + 2 * i] = a * c - b * s;
            x[off + 2 * i + 1] = a * s + b * c;
        }
    }

    @Override
    public void ropeHalf(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) {
        int half = dim / 2;
        for (int i = 0; i < half; i++) {
            float a = x[off + i];
            float b = x[off + i + half];
            float c = cos[csOff + i];
            float s = sin[csOff + i];
            x[off + i] = a * c - b * s;
            x[off + i + half] = a * s + b * c;
        }
    }
}
