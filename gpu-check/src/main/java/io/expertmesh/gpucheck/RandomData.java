package io.expertmesh.gpucheck;

import io.expertmesh.core.tensor.Bf16;
import java.util.Random;

/** Fresh random inputs for every check (never zeros: they hide unwritten outputs and wrong indexing). */
final class RandomData {
    private final Random random;

    RandomData(long seed) {
        this.random = new Random(seed);
    }

    Random random() {
        return random;
    }

    float[] gaussian(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (random.nextGaussian() * scale);
        }
        return a;
    }

    /** bf16 bit patterns of Gaussian values. */
    short[] bf16(int n, double scale) {
        short[] a = new short[n];
        for (int i = 0; i < n; i++) {
            a[i] = Bf16.fromFloat((float) (random.nextGaussian() * scale));
        }
        return a;
    }

    static double[] toDouble(short[] bf16) {
        double[] d = new double[bf16.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = Bf16.toFloat(bf16[i]);
        }
        return d;
    }

    /** A random permutation of 0..n-1: page ids handed out in no particular order, as a block pool does. */
    int[] permutation(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
