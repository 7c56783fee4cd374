package io.expertmesh.gpucheck;

/**
 * Plain-loop CPU references (double accumulation) for the kernels that core's ScalarKernels has no method for:
 * attention over paged or contiguous bf16 caches, bf16 products.
 */
public final class References {
    private References() {
    }

    /** C[m, n] = Σ_k A[m, k]·B[n, k]. */
    public static double[] gemm(double[] a, double[] b, int m, int n, int k) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int t = 0; t < k; t++) {
                    s += a[i * k + t] * b[j * k + t];
                }
                c[i * n + j] = s;
            }
        }
        return c;
    }

    /** Row of position p of sequence b in a paged cache of rows of {@code width}. */
    static int pagedRow(int[] table, int maxPages, int pageSize, int b, int p) {
        return table[b * maxPages + p / pageSize] * pageSize + p % pageSize;
    }

    /**
     * Absorbed MLA decode: for each (b, h), softmax(scale · q·K[p]) over p &lt; len[b], weighted sum of the latents
     * (the first {@code latent} values of each row). q [B, H, row], cache rows of {@code row} values.
     */
    public static double[] mlaDecode(double[] q, double[] cache, int[] table, int[] lens, int batch, int heads,
                                     int latent, int row, int maxPages, int pageSize, double scale) {
        double[] out = new double[batch * heads * latent];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int qo = (b * heads + h) * row;
                double[] s = new double[lens[b]];
                double max = Double.NEGATIVE_INFINITY;
                for (int p = 0; p < lens[b]; p++) {
                    int r = pagedRow(table, maxPages, pageSize, b, p) * row;
                    double acc = 0;
                    for (int d = 0; d < row; d++) {
                        acc += q[qo + d] * cache[r + d];
                    }
                    s[p] = acc * scale;
                    max = Math.max(max, s[p]);
                }
                double sum = 0;
                for (int p = 0; p < lens[b]; p++) {
                    s[p] = Math.exp(s[p] - max);
                    sum += s[p];
                }
                int oo = (b * heads + h) * latent;
                for (int p = 0; p < lens[b]; p++) {
                    int r = pagedRow(table, maxPages, pageSize, b, p) * row;
                    for (int c = 0; c < latent; c++) {
                        out[oo + c] += s[p] / sum * cache[r + c];
                    }
                }
            }
        }
        return out;
    }

    /** GQA decode over a paged cache whose row is [K of kvHeads | V of kvHeads], each head {@code dim} wide. */
    public static double[] gqaDecode(float[] q, double[] cache, int[] table, int[] lens, int batch, int heads,
                                     int kvHeads, int dim, int maxPages, int pageSize, double scale) {
        int rowW = 2 * kvHeads * dim;
        double[] out = new double[batch * heads * dim];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int kvh = h / (heads / kvHeads);
                double[] s = new double[lens[b]];
                double max = Double.NEGATIVE_INFINITY;
                for (int p = 0; p < lens[b]; p++) {
                    int r = pagedRow(table, maxPages, pageSize, b, p) * rowW + kvh * dim;
                    double acc = 0;
                    for (int d = 0; d < dim; d++) {
                        acc += q[(b * heads + h) * dim + d] * cache[r + d];
                    }
                    s[p] = acc * scale;
                    max = Math.max(max, s[p]);
                }
                double sum = 0;
                for (int p = 0; p < lens[b]; p++) {
                    s[p] = Math.exp(s[p] - max);
                    sum += s[p];
                }
                for (int p = 0; p < lens[b]; p++) {
                    int r = pagedRow(table, maxPages, pageSize, b, p) * rowW + (kvHeads + kvh) * dim;
                    for (int d = 0; d < dim; d++) {
                        out[(b * heads + h) * dim + d] += s[p] / sum * cache[r + d];
                    }
                }
            }
        }
        return out;
    }

    /** Causal attention: query i (position past+i) over keys 0..past+i. q [T,Hq,Dk], k [past+T,Hkv,Dk], v [.., Dv]. */
    public static double[] prefill(double[] q, double[] k, double[] v, int tokens, int past, int heads, int kvHeads,
                                   int dk, int dv, double scale) {
        double[] out = new double[tokens * heads * dv];
        for (int i = 0; i < tokens; i++) {
            for (int h = 0; h < heads; h++) {
                int kvh = h / (heads / kvHeads);
                int n = past + i + 1;
                double[] s = new double[n];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int d = 0; d < dk; d++) {
                        acc += q[(i * heads + h) * dk + d] * k[(j * kvHeads + kvh) * dk + d];
                    }
                    s[j] = acc * scale;
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < n; j++) {
                    s[j] = Math.exp(s[j] - max);
                    sum += s[j];
                }
                for (int j = 0; j < n; j++) {
                    for (int d = 0; d < dv; d++) {
                        out[(i * heads + h) * dv + d] += s[j] / sum * v[(j * kvHeads + kvh) * dv + d];
                    }
                }
            }
        }
        return out;
    }

}
