package io.expertmesh.gpucheck;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.cuda.MlaSplitPlan;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A step-by-step Java model of {@code mla_decode.cu}'s arithmetic (split ranges in whole tiles, per-tile online
 * softmax in the log2 domain, P rounded to bf16, O rescaled by alpha, normalised partials with a natural-log
 * LSE, the merge skipping empty splits), checked against the plain reference. It runs without a GPU, so the
 * algorithm is known right before the kernel is: a GPU failure is then in the CUDA code, not the math.
 */
class MlaKernelModelTest {
    private static final int TILE = MlaSplitPlan.TILE;
    private static final double LOG2E = 1.4426950408889634;

    /** out[h][c] for one sequence, as the split kernel + merge compute it. */
    static double[] model(double[] q, double[] rows, int len, int heads, int latent, int row, int splits,
                          double scale) {
        int tilesTotal = (len + TILE - 1) / TILE;
        int tilesPer = (tilesTotal + splits - 1) / splits;
        double[][] oPart = new double[splits][];
        double[][] lse = new double[splits][];
        for (int s = 0; s < splits; s++) {
            int start = s * tilesPer * TILE;
            int end = Math.min(len, start + tilesPer * TILE);
            if (start >= end) {
                continue;  // lse = -inf: skipped by the merge
            }
            double[] o = new double[heads * latent];
            double[] m = new double[heads];
            double[] l = new double[heads];
            Arrays.fill(m, Double.NEGATIVE_INFINITY);
            for (int row0 = start; row0 < end; row0 += TILE) {
                int n = Math.min(TILE, end - row0);
                for (int h = 0; h < heads; h++) {
                    double[] sc = new double[n];
                    double tmax = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        float acc = 0f;  // tensor-core products accumulate in float32
                        for (int d = 0; d < row; d++) {
                            acc += (float) (q[h * row + d] * rows[(row0 + j) * row + d]);
                        }
                        sc[j] = acc * (float) (scale * LOG2E);
                        tmax = Math.max(tmax, sc[j]);
                    }
                    double mNew = Math.max(m[h], tmax);
                    double alpha = Math.pow(2, m[h] - mNew);
                    double sum = 0;
                    for (int c = 0; c < latent; c++) {
                        o[h * latent + c] *= alpha;
                    }
                    for (int j = 0; j < n; j++) {
                        double p = Math.pow(2, sc[j] - mNew);
                        sum += p;
                        double pb = Bf16.toFloat(Bf16.fromFloat((float) p));
                        for (int c = 0; c < latent; c++) {
                            o[h * latent + c] += pb * rows[(row0 + j) * row + c];
                        }
                    }
                    l[h] = l[h] * alpha + sum;
                    m[h] = mNew;
                }
            }
            oPart[s] = new double[heads * latent];
            lse[s] = new double[heads];
            for (int h = 0; h < heads; h++) {
                for (int c = 0; c < latent; c++) {
                    oPart[s][h * latent + c] = o[h * latent + c] / l[h];
                }
                lse[s][h] = (m[h] + Math.log(l[h]) / Math.log(2)) * Math.log(2);
            }
        }
        double[] out = new double[heads * latent];
        for (int h = 0; h < heads; h++) {
            double mx = Double.NEGATIVE_INFINITY;
            for (int s = 0; s < splits; s++) {
                if (lse[s] != null) {
                    mx = Math.max(mx, lse[s][h]);
                }
            }
            double den = 0;
            for (int s = 0; s < splits; s++) {
                if (lse[s] != null) {
                    den += Math.exp(lse[s][h] - mx);
                }
            }
            for (int c = 0; c < latent; c++) {
                double acc = 0;
                for (int s = 0; s < splits; s++) {
                    if (lse[s] != null) {
                        acc += Math.exp(lse[s][h] - mx) * oPart[s][h * latent + c];
                    }
                }
                out[h * latent + c] = acc / den;
            }
        }
        return out;
    }

    @ParameterizedTest
    @CsvSource({"1,1", "63,1", "64,2", "65,5", "200,2", "1000,3", "1000,16", "130,3"})
    void model_matchesReference(int len, int splits) {
        int heads = 3;
        int latent = 32;
        int row = 48;
        RandomData rnd = new RandomData(len * 7L + splits);
        double[] q = RandomData.toDouble(rnd.bf16(heads * row, 1));
        double[] rows = RandomData.toDouble(rnd.bf16(len * row, 1));
        double scale = 1 / Math.sqrt(row);
        double[] ref = References.mlaDecode(q, rows, identityTable(len), new int[]{len}, 1, heads, latent, row,
                len, 1, scale);
        float[] got = toFloat(model(q, rows, len, heads, latent, row, splits, scale));
        double err = Errors.relativeL2(got, ref);
        assertTrue(err < 1e-2, "len " + len + " splits " + splits + ": rel.err " + err);
    }

    private static int[] identityTable(int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = i;
        }
        return t;
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }
}
