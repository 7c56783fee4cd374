package io.expertmesh.core.kernel;

import io.expertmesh.core.tensor.Matrix;

/** Placeholder: delegates to the scalar reference until the Vector API path lands. */
public final class VectorKernels implements Kernels {
    private final ScalarKernels scalar;

    public VectorKernels(ComputePool pool) {
        this.scalar = new ScalarKernels(pool);
    }

    @Override public ComputePool pool() { return scalar.pool(); }
    @Override public void matmul(Matrix w, float[] x, int xOff, float[] out, int outOff, int batch) { scalar.matmul(w, x, xOff, out, outOff, batch); }
    @Override public float dot(float[] a, int aOff, float[] b, int bOff, int n) { return scalar.dot(a, aOff, b, bOff, n); }
    @Override public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) { scalar.axpy(alpha, x, xOff, y, yOff, n); }
    @Override public void rmsNorm(float[] x, int xOff, float[] w, float eps, float[] out, int outOff, int n) { scalar.rmsNorm(x, xOff, w, eps, out, outOff, n); }
    @Override public void swiglu(float[] g, int gOff, float[] u, int uOff, float[] out, int outOff, int n) { scalar.swiglu(g, gOff, u, uOff, out, outOff, n); }
    @Override public void softmax(float[] x, int off, int n) { scalar.softmax(x, off, n); }
    @Override public void ropeInterleaved(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) { scalar.ropeInterleaved(x, off, dim, cos, sin, csOff); }
    @Override public void ropeHalf(float[] x, int off, int dim, float[] cos, float[] sin, int csOff) { scalar.ropeHalf(x, off, dim, cos, sin, csOff); }
}
