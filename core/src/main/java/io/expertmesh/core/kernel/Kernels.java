package io.expertmesh.core.kernel;

import io.expertmesh.core.tensor.InterleavedRows;
import io.expertmesh.core.tensor.Matrix;

/**
 * The compute seam: every numeric primitive the forward pass needs. {@link ScalarKernels} is the reference;
 * {@link VectorKernels} is the fast CPU path (Vector API, all cores); a CUDA implementation can follow.
 *
 * <p>Activations are float32 arrays addressed by offset so a batch of rows lives in one array without copies.
 * Every method is deterministic: for the same inputs the same bits, whatever the batch size or thread count
 * (a request's output must not depend on what else is in its batch).
 */
public interface Kernels {

    /** The pool that parallel kernels (and callers with their own loops) spread work over. */
    ComputePool pool();

    /**
     * Which code runs the matrix products ({@code "native AVX512-BF16"}, {@code "Vector API"}, {@code "scalar"}):
     * two processes whose kinds differ agree to float rounding, not bit for bit (an expert worker and its router,
     * see the router's check of its workers).
     */
    default String matmulKind() {
        return getClass().getSimpleName();
    }

    /**
     * {@code w} in the layout this implementation's matrix products read (the same values, and the same product
     * bits): {@code w} itself when it already is, else a copy (the same copy again for the same source matrix while
     * it is in use). Called once per weight matrix at load (and by an expert worker's runner on an expert's first
     * use). This default is plain rows; {@link VectorKernels} with
     * native kernels interleaves BF16 and FP8 rows ({@link InterleavedRows}).
     */
    default Matrix prepare(Matrix w) {
        return InterleavedRows.rowMajor(w);
    }

    /**
     * Matrix product with a transposed weight, as {@code torch.nn.functional.linear}: for every batch row
     * {@code b < batch} and weight row {@code r < w.rows()},
     * {@code out[outOff + b*w.rows() + r] = Σ_c w[r][c] · x[xOff + b*w.cols() + c]}.
     * Each weight row is read from memory once per call, for all batch rows.
     */
    void matmul(Matrix w, float[] x, int xOff, float[] out, int outOff, int batch);

    /**
     * {@link #matmul} restricted to weight rows {@code [rowFrom, rowTo)}, on the calling thread only: the same
     * output layout ({@code out[outOff + b*w.rows() + r]}), the same bits for each computed element, other
     * elements untouched. For callers that spread several matrices (e.g. experts) over {@link #pool()}
     * themselves.
     */
    void matmulRows(Matrix w, int rowFrom, int rowTo, float[] x, int xOff, float[] out, int outOff, int batch);

    /**
     * Runs every product of the group, as {@link #matmul} each, with the same bits; implementations may run
     * them together in one parallel step.
     */
    default void matmuls(MatmulGroup g) {
        for (int i = 0; i < g.size; i++) {
            matmul(g.w[i], g.x[i], g.xOff[i], g.out[i], g.outOff[i], g.batch[i]);
        }
    }

    /** {@code Σ_i a[aOff+i]·b[bOff+i]} for {@code i < n}. */
    float dot(float[] a, int aOff, float[] b, int bOff, int n);

    /**
     * Attention scores over {@code count} rows spaced {@code stride} apart:
     * {@code out[outOff+i] = scale · dot(q[qOff..], k[kOff + i·stride ..], dim)}, each row summed exactly as
     * {@link #dot} sums it.
     */
    default void dotRows(float[] q, int qOff, float[] k, int kOff, int stride, int count, int dim, float scale,
                         float[] out, int outOff) {
        for (int i = 0; i < count; i++) {
            out[outOff + i] = dot(q, qOff, k, kOff + i * stride, dim) * scale;
        }
    }

    /**
     * Weighted sum of {@code count} rows spaced {@code stride} apart, added in row order:
     * {@code y[yOff+j] += Σ_i w[wOff+i] · v[vOff + i·stride + j]}, as {@code count} calls of {@link #axpy}.
     */
    default void axpyRows(float[] w, int wOff, float[] v, int vOff, int stride, int count, int dim, float[] y,
                          int yOff) {
        for (int i = 0; i < count; i++) {
            axpy(w[wOff + i], v, vOff + i * stride, y, yOff, dim);
        }
    }

    /**
     * {@link #dotRows} for {@code nq} queries over the same rows: query {@code j} at {@code q[qOff + j·qStride ..]},
     * its scores at {@code out[outOff + j·outStride + i]}, each the bits {@code dotRows} gives it. Attention heads
     * that share cached rows (MLA's heads all share the latent rows; GQA's heads share their group's) call this so
     * an implementation can read each row once for all of them.
     */
    default void dotRowsMulti(float[] q, int qOff, int qStride, int nq, float[] k, int kOff, int stride, int count,
                              int dim, float scale, float[] out, int outOff, int outStride) {
        for (int j = 0; j < nq; j++) {
            dotRows(q, qOff + j * qStride, k, kOff, stride, count, dim, scale, out, outOff + j * outStride);
        }
    }

    /**
     * {@link #axpyRows} for {@code nq} weight vectors over the same rows: weights {@code j} at
     * {@code w[wOff + j·wStride ..]}, added into {@code y[yOff + j·yStride ..]}, each the bits {@code axpyRows}
     * gives it (rows added in order).
     */
    default void axpyRowsMulti(float[] w, int wOff, int wStride, int nq, float[] v, int vOff, int stride, int count,
                               int dim, float[] y, int yOff, int yStride) {
        for (int j = 0; j < nq; j++) {
            axpyRows(w, wOff + j * wStride, v, vOff, stride, count, dim, y, yOff + j * yStride);
        }
    }

    /** {@code y[yOff+i] += alpha · x[xOff+i]} for {@code i < n}. */
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n);

    /** {@code out = x / sqrt(mean(x²) + eps) · weight} over {@code n} elements; out may alias x. */
    void rmsNorm(float[] x, int xOff, float[] weight, float eps, float[] out, int outOff, int n);

    /** {@code out[i] = silu(gate[i]) · up[i]}, silu(g) = g / (1 + e^-g); out may alias either input. */
    void swiglu(float[] gate, int gateOff, float[] up, int upOff, float[] out, int outOff, int n);

    /** In-place softmax over {@code x[off, off+n)}, max-subtracted. */
    void softmax(float[] x, int off, int n);

    /**
     * Rotary embedding on interleaved pairs (x[2i], x[2i+1]) — the DeepSeek convention — over {@code dim}
     * elements, with {@code cos[csOff+i]}, {@code sin[csOff+i]} for pair i.
     */
    void ropeInterleaved(float[] x, int off, int dim, float[] cos, float[] sin, int csOff);

    /**
     * Rotary embedding on rotate-half pairs (x[i], x[i+dim/2]) — the Llama/Mixtral/Qwen convention.
     */
    void ropeHalf(float[] x, int off, int dim, float[] cos, float[] sin, int csOff);
}
