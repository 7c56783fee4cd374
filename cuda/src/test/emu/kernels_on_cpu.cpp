// The kernels of src/main/cuda on the CPU execution model (emu.h; tensor cores on inc/mma.h), against plain
// double-precision references at odd sizes, outputs poisoned with NaN (or a background that must survive), with
// the launch shapes their Java launchers use. Prints one line per check; exit 1 when one failed. See run.sh.
#include "emu.h"
#include "forward.cu"
#include "elementwise.cu"
#include "attention.cu"
#include "linear.cu"
#include <tuple>
#include "mla_decode.cu"
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

static std::mt19937 rng;
static int failures = 0;

static std::vector<float> gauss(size_t n, double s = 1) {
    std::normal_distribution<double> d(0, s);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(d(rng));
    return v;
}
static std::vector<__nv_bfloat16> bf(const std::vector<float>& f) {
    std::vector<__nv_bfloat16> b(f.size());
    for (size_t i = 0; i < f.size(); i++) b[i] = __float2bfloat16_rn(f[i]);
    return b;
}
static float tof(__nv_bfloat16 b) { return __bfloat162float(b); }
static std::vector<float> nans(size_t n) { return std::vector<float>(n, NAN); }

// Relative L2 of got against want; NaN in got where want is finite fails; NaN expected where want is NaN.
static void check(const std::string& name, const std::vector<float>& got, const std::vector<double>& want,
                  double tol) {
    double num = 0, den = 0;
    bool bad = got.size() != want.size();
    for (size_t i = 0; !bad && i < got.size(); i++) {
        if (std::isnan(want[i])) {
            if (!std::isnan(got[i])) bad = true;
            continue;
        }
        if (!std::isfinite(got[i])) { bad = true; break; }
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    double err = bad ? NAN : std::sqrt(num / std::max(den, 1e-300));
    bool ok = !bad && err <= tol;
    if (!ok) failures++;
    std::printf("%-60s %s  rel.err %.3e (tol %.0e)\n", name.c_str(), ok ? "PASS" : "FAIL", err, tol);
}
static std::vector<double> dbl(const std::vector<float>& f) { return std::vector<double>(f.begin(), f.end()); }
static unsigned rowThreads(int n) { return std::clamp((n + 31) / 32 * 32, 32, 256); }

static void elementwiseAndAttention();
static void linearAndMla();

int main(int argc, char** argv) {
    unsigned seed = argc > 1 ? static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10)) : 12345u;
    rng.seed(seed);
    std::printf("seed %u\n", seed);
    {  // zero, add, f32_to_bf16 with a small grid so the grid-stride loop runs several times
        int n = 1001;
        auto x = gauss(n + 5);
        auto want = dbl(x);
        for (int i = 0; i < 777; i++) want[i] = 0;
        emuLaunch({3}, 64, 0, [&] { zero_f32(x.data(), 777); });
        check("zero_f32 777 of 1006, grid 3x64", x, want, 0);
        auto y = gauss(n + 5), a = gauss(n);
        auto wy = dbl(y);
        for (int i = 0; i < n; i++) wy[i] += a[i];
        emuLaunch({2}, 96, 0, [&] { add_f32(y.data(), a.data(), n); });
        check("add_f32 1001, grid 2x96", y, wy, 1e-7);
        auto src = gauss(n, 3);
        std::vector<__nv_bfloat16> dst(n, {0xffff});
        emuLaunch({4}, 32, 0, [&] { f32_to_bf16(src.data(), dst.data(), n); });
        std::vector<float> got(n);
        std::vector<double> w(n);
        for (int i = 0; i < n; i++) { got[i] = tof(dst[i]); w[i] = tof(__float2bfloat16_rn(src[i])); }
        check("f32_to_bf16 1001", got, w, 0);
    }
    {  // add_bias, gated_add
        int rows = 9, n = 333;
        auto x = gauss(rows * n + 3), b = gauss(n);
        auto w = dbl(x);
        for (int r = 0; r < rows; r++) for (int j = 0; j < n; j++) w[r * n + j] += b[j];
        emuLaunch({(unsigned) rows}, rowThreads(n), 0, [&] { add_bias_f32(x.data(), b.data(), n); });
        check("add_bias_f32 9x333", x, w, 1e-7);
        auto y = gauss(rows * n), xx = gauss(rows * n), g = gauss(rows, 2);
        auto wy = dbl(y);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) wy[r * n + j] += xx[r * n + j] / (1 + std::exp(-(double) g[r]));
        emuLaunch({(unsigned) rows}, rowThreads(n), 0, [&] { gated_add_f32(y.data(), xx.data(), g.data(), n); });
        check("gated_add_f32 9x333", y, wy, 1e-6);
    }
    {  // embed: f32 and bf16 tables; an out-of-range id gives a NaN row
        int vocab = 37, hidden = 45, rows = 13;
        auto tf = gauss(vocab * hidden);
        auto tb = bf(tf);
        std::vector<int> ids(rows);
        for (int r = 0; r < rows; r++) ids[r] = rng() % vocab;
        ids[0] = vocab - 1;
        ids[5] = vocab;  // out of range
        ids[6] = -1;
        for (int bfT = 0; bfT < 2; bfT++) {
            auto out = nans(rows * hidden);
            for (auto& v : out) v = 7;  // not NaN: the bad rows must become NaN
            std::vector<double> w(rows * hidden);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < hidden; j++)
                    w[r * hidden + j] = ids[r] < 0 || ids[r] >= vocab ? NAN
                            : bfT ? tof(tb[ids[r] * hidden + j]) : tf[ids[r] * hidden + j];
            emuLaunch({(unsigned) rows}, rowThreads(hidden), 0, [&] {
                if (bfT) embed_bf16(tb.data(), ids.data(), out.data(), hidden, vocab);
                else embed_f32(tf.data(), ids.data(), out.data(), hidden, vocab);
            });
            check(std::string("embed_") + (bfT ? "bf16" : "f32") + " 37x45 rows 13, two ids out of range", out, w, 0);
        }
    }
    {  // strided RMSNorm, separate output and in place
        int rows = 7, n = 301, xs = 311, os = 307;
        auto x = gauss((rows - 1) * xs + n, 1.5), wt = gauss(n);
        auto out = gauss((rows - 1) * os + n);
        auto w = dbl(out);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int j = 0; j < n; j++) ss += (double) x[r * xs + j] * x[r * xs + j];
            double inv = 1 / std::sqrt(ss / n + 1e-6);
            for (int j = 0; j < n; j++) w[r * os + j] = x[r * xs + j] * inv * wt[j];
        }
        emuLaunch({(unsigned) rows}, rowThreads(n), 0,
                  [&] { rms_norm_strided_f32(x.data(), xs, wt.data(), out.data(), os, n, 1e-6f); });
        check("rms_norm_strided_f32 7x301 strides 311/307", out, w, 1e-6);
        auto wi = dbl(x);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int j = 0; j < n; j++) ss += (double) x[r * xs + j] * x[r * xs + j];
            double inv = 1 / std::sqrt(ss / n + 1e-6);
            for (int j = 0; j < n; j++) wi[r * xs + j] = x[r * xs + j] * inv * wt[j];
        }
        emuLaunch({(unsigned) rows}, rowThreads(n), 0,
                  [&] { rms_norm_strided_f32(x.data(), xs, wt.data(), x.data(), xs, n, 1e-6f); });
        check("rms_norm_strided_f32 7x301 in place", x, wi, 1e-6);
        auto s = gauss(5);
        auto sw = gauss(5);
        auto so = nans(5);
        std::vector<double> ws(5);
        double ss = 0;
        for (int j = 0; j < 5; j++) ss += (double) s[j] * s[j];
        for (int j = 0; j < 5; j++) ws[j] = s[j] / std::sqrt(ss / 5 + 1e-6) * sw[j];
        emuLaunch({1}, rowThreads(5), 0, [&] { rms_norm_strided_f32(s.data(), 5, sw.data(), so.data(), 5, 5, 1e-6f); });
        check("rms_norm_strided_f32 1x5", so, ws, 1e-6);
    }
    {  // per-head products over strided views, f32 and bf16 weights
        for (int bfW = 0; bfW < 2; bfW++) {
            int heads = 5, rows = 37, cols = 29, tokens = 11;
            int xOff = 2, xHead = cols + 3, xRow = heads * xHead + 5, oOff = 1, oHead = rows + 1,
                oRow = heads * oHead + 3;
            auto wf = gauss(heads * rows * cols, 0.1);
            auto wb = bf(wf);
            auto x = gauss(tokens * xRow);
            auto out = gauss(tokens * oRow);
            auto w = dbl(out);
            for (int t = 0; t < tokens; t++)
                for (int h = 0; h < heads; h++)
                    for (int r = 0; r < rows; r++) {
                        double acc = 0;
                        for (int c = 0; c < cols; c++) {
                            double wv = bfW ? tof(wb[(h * rows + r) * cols + c]) : wf[(h * rows + r) * cols + c];
                            acc += wv * x[t * xRow + h * xHead + xOff + c];
                        }
                        w[t * oRow + h * oHead + oOff + r] = acc;
                    }
            emuLaunch({(unsigned) (rows + 7) / 8, (unsigned) heads}, 256, 0, [&] {
                if (bfW) head_linear_bf16w_f32(wb.data(), rows, cols, x.data(), xRow, xHead, xOff, out.data(), oRow,
                                               oHead, oOff, tokens);
                else head_linear_f32w_f32(wf.data(), rows, cols, x.data(), xRow, xHead, xOff, out.data(), oRow,
                                          oHead, oOff, tokens);
            });
            check(std::string("head_linear_") + (bfW ? "bf16w" : "f32w") + " h5 37x29 t11 strided", out, w, 1e-6);
        }
    }
    {  // strided copy
        int rows = 7, heads = 3, n = 19, sOff = 3, sHead = n + 2, sRow = heads * sHead + 1, dOff = 4, dHead = n + 5,
            dRow = heads * dHead + 7;
        auto src = gauss(rows * sRow), dst = gauss(rows * dRow);
        auto w = dbl(dst);
        for (int t = 0; t < rows; t++)
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < n; j++) w[t * dRow + h * dHead + dOff + j] = src[t * sRow + h * sHead + sOff + j];
        emuLaunch({(unsigned) rows, (unsigned) heads}, rowThreads(n), 0, [&] {
            copy_strided_f32(src.data(), sRow, sHead, sOff, dst.data(), dRow, dHead, dOff, n);
        });
        check("copy_strided_f32 7x3x19", dst, w, 0);
    }
    {  // gather (bad index -> NaN row) and scatter-add (bad index dropped)
        int srcRows = 41, n = 37, rows = 13, off = 3;
        auto src = gauss(srcRows * n);
        std::vector<int> idx(off + rows + 2);
        for (auto& i : idx) i = rng() % srcRows;
        idx[off + 4] = srcRows;
        auto dst = nans(rows * n);
        std::vector<double> w(rows * n);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
                w[r * n + j] = idx[off + r] >= srcRows ? NAN : src[idx[off + r] * n + j];
        for (int r = 0; r < rows; r++) if (idx[off + r] >= srcRows) for (int j = 0; j < n; j++) dst[r * n + j] = 1;
        emuLaunch({(unsigned) rows}, rowThreads(n), 0,
                  [&] { gather_rows_f32(src.data(), idx.data(), off, dst.data(), n, srcRows); });
        check("gather_rows_f32 13 of 41x37, one index out of range", dst, w, 0);

        int dstRows = 29;
        off = 5;
        auto s2 = gauss(rows * n);
        std::vector<int> perm(dstRows);
        for (int i = 0; i < dstRows; i++) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int> id2(off + rows + 2);
        for (size_t i = 0; i < id2.size(); i++) id2[i] = (int) i >= off && (int) i < off + rows ? perm[i - off] : 0;
        id2[off + 2] = -3;  // dropped
        auto wt = gauss(id2.size());
        auto d2 = gauss(dstRows * n);
        auto w2 = dbl(d2);
        for (int r = 0; r < rows; r++) {
            int to = id2[off + r];
            if (to < 0) continue;
            for (int j = 0; j < n; j++) w2[to * n + j] += (double) wt[off + r] * s2[r * n + j];
        }
        emuLaunch({(unsigned) rows}, rowThreads(n), 0,
                  [&] { scatter_add_rows_f32(s2.data(), id2.data(), wt.data(), off, d2.data(), n, dstRows); });
        check("scatter_add_rows_f32 13 into 29x37, one index dropped", d2, w2, 1e-6);
    }
    {  // kv write: bit-exact rounding, background untouched, a bad slot dropped
        int rows = 13, n = 27, poolRow = 41, dstOff = 9, slotsInPool = 40, srcStride = n + 4;
        auto bg = bf(gauss(slotsInPool * poolRow));
        auto pool = bg;
        auto src = gauss(rows * srcStride, 3);
        std::vector<int> perm(slotsInPool);
        for (int i = 0; i < slotsInPool; i++) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int> slots(perm.begin(), perm.begin() + rows);
        slots[3] = slotsInPool;  // dropped
        auto want = bg;
        for (int r = 0; r < rows; r++) {
            if (slots[r] >= slotsInPool) continue;
            for (int j = 0; j < n; j++) want[slots[r] * poolRow + dstOff + j] = __float2bfloat16_rn(src[r * srcStride + j]);
        }
        emuLaunch({(unsigned) rows}, rowThreads(n), 0, [&] {
            kv_write_bf16(src.data(), srcStride, pool.data(), poolRow, dstOff, slots.data(), n, slotsInPool);
        });
        std::vector<float> got(pool.size());
        std::vector<double> w(pool.size());
        for (size_t i = 0; i < pool.size(); i++) { got[i] = tof(pool[i]); w[i] = tof(want[i]); }
        check("kv_write_bf16 13x27 into rows of 41, one slot dropped", got, w, 0);
    }
    // generic MLA attention: lens across chunk edges, shuffled blocks, one bad block id skipped
    struct MlaCase { std::vector<int> lens; int heads, latent, rope, bs; bool badBlock; };
    for (const MlaCase& c : {MlaCase{{1, 37, 200, 129}, 5, 23, 10, 7, false}, MlaCase{{64, 65, 130}, 3, 32, 16, 16, false},
                             MlaCase{{1000}, 1, 16, 8, 16, false}, MlaCase{{100, 50}, 2, 19, 0, 5, true}}) {
        int tokens = (int) c.lens.size(), row = c.latent + c.rope;
        int maxLen = *std::max_element(c.lens.begin(), c.lens.end());
        int maxBlocks = (maxLen + c.bs - 1) / c.bs + 1, poolBlocks = tokens * maxBlocks + 3;
        auto pool = bf(gauss((size_t) poolBlocks * c.bs * row));
        std::vector<int> perm(poolBlocks);
        for (int i = 0; i < poolBlocks; i++) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int> table(perm.begin(), perm.begin() + tokens * maxBlocks);
        if (c.badBlock) table[1] = poolBlocks + 5;  // token 0's second block: its positions are skipped
        auto q = gauss(tokens * c.heads * row);
        auto out = nans(tokens * c.heads * c.latent);
        std::vector<double> w(out.size());
        float scale = 1 / std::sqrt((float) row);
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < c.heads; h++) {
                std::vector<double> s;
                std::vector<int> sl;
                for (int p = 0; p < c.lens[t]; p++) {
                    int blk = table[t * maxBlocks + p / c.bs];
                    if (blk < 0 || blk >= poolBlocks) continue;
                    int slot = blk * c.bs + p % c.bs;
                    double acc = 0;
                    for (int d = 0; d < row; d++) acc += (double) q[(t * c.heads + h) * row + d] * tof(pool[(size_t) slot * row + d]);
                    s.push_back(acc * scale);
                    sl.push_back(slot);
                }
                double m = -INFINITY, sum = 0;
                for (double v : s) m = std::max(m, v);
                for (double& v : s) { v = std::exp(v - m); sum += v; }
                for (int d = 0; d < c.latent; d++) {
                    double o = 0;
                    for (size_t i = 0; i < s.size(); i++) o += s[i] / sum * tof(pool[(size_t) sl[i] * row + d]);
                    w[(t * c.heads + h) * c.latent + d] = s.empty() ? 0 : o;
                }
            }
        emuLaunch({(unsigned) c.heads, (unsigned) tokens}, 128, (2 * c.latent + c.rope) * 4, [&] {
            mla_attention_f32q(q.data(), pool.data(), table.data(), c.lens.data(), out.data(), c.heads, c.latent, c.rope,
                               maxBlocks, c.bs, poolBlocks, scale);
        });
        std::string lens;
        for (int l : c.lens) lens += std::to_string(l) + ",";
        check("mla_attention_f32q lens " + lens + " h" + std::to_string(c.heads) + " " + std::to_string(c.latent) + "+" +
                      std::to_string(c.rope) + " block" + std::to_string(c.bs) + (c.badBlock ? " bad block" : ""),
              out, w, 1e-5);
    }
    elementwiseAndAttention();
    linearAndMla();
    std::printf(failures ? "%d FAILED\n" : "ALL PASSED\n", failures);
    return failures ? 1 : 0;
}

// ---- elementwise.cu and attention.cu: the kernels CudaOps reuses ---------------------------------------------------

static double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// core's Gate as the kernel's comment states it: scores, biased choice, group filter, top-k, renormalise, scale.
static void gateRef(const float* lg, const float* bias, int E, int k, bool sig, int nGroup, int topkGroup, bool norm,
                    float scale, int* ids, double* w) {
    std::vector<double> s(E), ch(E);
    if (sig) {
        for (int i = 0; i < E; i++) s[i] = sigmoid(lg[i]);
    } else {
        double m = -INFINITY, sum = 0;
        for (int i = 0; i < E; i++) m = std::max(m, (double) lg[i]);
        for (int i = 0; i < E; i++) sum += s[i] = std::exp(lg[i] - m);
        for (double& v : s) v /= sum;
    }
    for (int i = 0; i < E; i++) ch[i] = s[i] + (bias ? bias[i] : 0);
    if (nGroup > 1 && topkGroup < nGroup) {
        int per = E / nGroup;
        std::vector<double> gs(nGroup);
        for (int g = 0; g < nGroup; g++) {
            std::vector<double> v(ch.begin() + g * per, ch.begin() + (g + 1) * per);
            std::sort(v.rbegin(), v.rend());
            gs[g] = bias ? v[0] + (per > 1 ? v[1] : 0) : v[0];
        }
        std::vector<bool> keep(nGroup, false);
        for (int t = 0; t < topkGroup; t++) {
            int b = -1;
            for (int g = 0; g < nGroup; g++) if (!keep[g] && (b < 0 || gs[g] > gs[b])) b = g;
            keep[b] = true;
        }
        for (int i = 0; i < E; i++) if (!keep[i / per]) ch[i] = -INFINITY;
    }
    double sum = 0;
    for (int j = 0; j < k; j++) {
        int b = -1;
        for (int i = 0; i < E; i++) if (ch[i] != -INFINITY && (b < 0 || ch[i] > ch[b])) b = i;
        ids[j] = b;
        w[j] = s[b];
        sum += s[b];
        ch[b] = -INFINITY;
    }
    for (int j = 0; j < k; j++) w[j] = (norm ? w[j] / sum : w[j]) * scale;
}

static void elementwiseAndAttention() {
    {  // rms_norm_f32 (contiguous), as ElementwiseOps launches it: 256 threads per row
        int rows = 7, n = 1001;
        auto x = gauss(rows * n, 1.5), wt = gauss(n);
        auto out = nans(rows * n);
        std::vector<double> w(rows * n);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int j = 0; j < n; j++) ss += (double) x[r * n + j] * x[r * n + j];
            for (int j = 0; j < n; j++) w[r * n + j] = x[r * n + j] / std::sqrt(ss / n + 1e-6) * wt[j];
        }
        emuLaunch({(unsigned) rows}, 256, 0, [&] { rms_norm_f32(x.data(), wt.data(), out.data(), n, 1e-6f); });
        check("rms_norm_f32 7x1001", out, w, 1e-6);
    }
    for (int inter = 0; inter < 2; inter++) {  // RoPE over strided heads; other elements untouched
        int rows = 5, heads = 3, dim = 66, offset = 5, hs = dim + 3, rs = offset + heads * hs + 7, cs = dim / 2 + 1;
        auto x = gauss(rows * rs), c = gauss(rows * cs), s = gauss(rows * cs);
        auto w = dbl(x);
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < dim / 2; i++) {
                    int base = r * rs + offset + h * hs;
                    int a = inter ? base + 2 * i : base + i, b = inter ? base + 2 * i + 1 : base + i + dim / 2;
                    double ca = c[r * cs + i], sa = s[r * cs + i];
                    w[a] = x[a] * ca - x[b] * sa;
                    w[b] = x[a] * sa + x[b] * ca;
                }
        emuLaunch({(unsigned) rows, (unsigned) heads}, std::min(128, ((dim / 2 + 31) / 32) * 32), 0, [&] {
            if (inter) rope_interleaved_f32(x.data(), c.data(), s.data(), rs, hs, offset, dim, cs);
            else rope_half_f32(x.data(), c.data(), s.data(), rs, hs, offset, dim, cs);
        });
        check(std::string(inter ? "rope_interleaved_f32" : "rope_half_f32") + " 5x3x66 strided", x, w, 1e-6);
    }
    {  // swiglu, output over the gate
        int n = 10007;
        auto g = gauss(n, 2), u = gauss(n);
        std::vector<double> w(n);
        for (int i = 0; i < n; i++) w[i] = g[i] * sigmoid(g[i]) * u[i];
        emuLaunch({7}, 256, 0, [&] { swiglu_f32(g.data(), u.data(), g.data(), n); });
        check("swiglu_f32 10007 into gate, grid 7x256", g, w, 1e-6);
    }
    struct GateCase { const char* what; int tokens, E, k; bool sig, bias; int nGroup, topkGroup; bool norm; float scale; };
    for (const GateCase& c : {GateCase{"v3 sigmoid+bias+groups", 9, 64, 6, true, true, 8, 3, true, 2.5f},
                              GateCase{"mixtral softmax top2", 9, 8, 2, false, false, 1, 1, true, 1.f},
                              GateCase{"qwen2 softmax no-renorm", 9, 60, 4, false, false, 1, 1, false, 1.f}}) {
        auto lg = gauss(c.tokens * c.E, 2), bias = gauss(c.E, 0.1);
        std::vector<int> ids(c.tokens * c.k, -7), wantIds(c.tokens * c.k);
        auto wts = nans(c.tokens * c.k);
        std::vector<double> want(c.tokens * c.k);
        for (int t = 0; t < c.tokens; t++)
            gateRef(lg.data() + t * c.E, c.bias ? bias.data() : nullptr, c.E, c.k, c.sig, c.nGroup, c.topkGroup, c.norm,
                    c.scale, wantIds.data() + t * c.k, want.data() + t * c.k);
        emuLaunch({(unsigned) c.tokens}, 32, (2 * c.E + c.nGroup) * 4, [&] {
            topk_gate_f32(lg.data(), c.bias ? bias.data() : lg.data(), c.bias ? 1 : 0, c.E, c.k, c.sig, c.nGroup,
                          c.topkGroup, c.norm, c.scale, ids.data(), wts.data());
        });
        if (ids != wantIds) {
            for (auto& v : wts) v = NAN;  // wrong experts fail the check
        }
        check(std::string("topk_gate_f32 ") + c.what + (ids != wantIds ? " (ids differ)" : ""), wts, want, 1e-6);
    }
    struct GqaCase { std::vector<int> lens; int heads, kvHeads, dim, page; };
    for (const GqaCase& c : {GqaCase{{1, 45, 300}, 12, 4, 72, 16}, GqaCase{{17, 2}, 8, 8, 128, 7},
                             GqaCase{{33}, 2, 1, 256, 5}, GqaCase{{0, 30}, 4, 2, 64, 8}}) {  // len 0: zeros
        int batch = (int) c.lens.size(), maxLen = *std::max_element(c.lens.begin(), c.lens.end());
        int maxPages = (maxLen + c.page - 1) / c.page, pages = batch * maxPages + 2, rowW = 2 * c.kvHeads * c.dim;
        std::vector<int> perm(pages);
        for (int i = 0; i < pages; i++) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int> table(perm.begin(), perm.begin() + batch * maxPages);
        auto cache = bf(gauss((size_t) pages * c.page * rowW));
        auto q = gauss(batch * c.heads * c.dim);
        auto out = nans(batch * c.heads * c.dim);
        std::vector<double> w(out.size());
        float scale = 1 / std::sqrt((float) c.dim);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < c.heads; h++) {
                int kvh = h / (c.heads / c.kvHeads);
                std::vector<double> s(c.lens[b]);
                double m = -INFINITY, sum = 0;
                for (int p = 0; p < c.lens[b]; p++) {
                    size_t row = (size_t) (table[b * maxPages + p / c.page] * c.page + p % c.page) * rowW;
                    double acc = 0;
                    for (int d = 0; d < c.dim; d++) acc += (double) q[(b * c.heads + h) * c.dim + d] * tof(cache[row + kvh * c.dim + d]);
                    s[p] = acc * scale;
                    m = std::max(m, s[p]);
                }
                for (double& v : s) sum += v = std::exp(v - m);
                for (int d = 0; d < c.dim; d++) {
                    double o = 0;
                    for (int p = 0; p < c.lens[b]; p++) {
                        size_t row = (size_t) (table[b * maxPages + p / c.page] * c.page + p % c.page) * rowW;
                        o += s[p] / sum * tof(cache[row + (c.kvHeads + kvh) * c.dim + d]);
                    }
                    w[(b * c.heads + h) * c.dim + d] = o;
                }
            }
        emuLaunch({(unsigned) c.heads, (unsigned) batch}, 128, 0, [&] {
            gqa_decode_paged(q.data(), cache.data(), table.data(), c.lens.data(), out.data(), c.heads, c.kvHeads, c.dim,
                             maxPages, c.page, scale);
        });
        check("gqa_decode_paged h" + std::to_string(c.heads) + "/" + std::to_string(c.kvHeads) + " d" +
                      std::to_string(c.dim) + " page" + std::to_string(c.page),
              out, w, 1e-5);
    }
    {  // causal prefill with a past
        int T = 21, past = 19, Hq = 4, Hkv = 2, Dk = 72, Dv = 40, keys = past + T;
        auto qf = gauss(T * Hq * Dk), kf = gauss(keys * Hkv * Dk), vf = gauss(keys * Hkv * Dv);
        auto q = bf(qf), k = bf(kf), v = bf(vf);
        auto out = nans(T * Hq * Dv);
        std::vector<double> w(out.size());
        float scale = 1 / std::sqrt((float) Dk);
        for (int i = 0; i < T; i++)
            for (int h = 0; h < Hq; h++) {
                int kvh = h / (Hq / Hkv);
                int n = past + i + 1;
                std::vector<double> s(n);
                double m = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int d = 0; d < Dk; d++) acc += (double) tof(q[(i * Hq + h) * Dk + d]) * tof(k[(j * Hkv + kvh) * Dk + d]);
                    s[j] = acc * scale;
                    m = std::max(m, s[j]);
                }
                for (double& x : s) sum += x = std::exp(x - m);
                for (int d = 0; d < Dv; d++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += s[j] / sum * tof(v[(j * Hkv + kvh) * Dv + d]);
                    w[(i * Hq + h) * Dv + d] = o;
                }
            }
        emuLaunch({(unsigned) (T + 15) / 16, (unsigned) Hq}, 128, 32 * (Dk + Dv) * 4, [&] {
            prefill_causal(q.data(), k.data(), v.data(), out.data(), T, past, Hq, Hkv, Dk, Dv, scale);
        });
        check("prefill_causal T21 past19 h4/2 d72/40", out, w, 1e-5);
    }
}

// ---- linear.cu and mla_decode.cu ------------------------------------------------------------------------------------

static std::vector<double> gemmRef(const std::vector<__nv_bfloat16>& a, const std::vector<__nv_bfloat16>& b, int m,
                                   int n, int k) {
    std::vector<double> c((size_t) m * n);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int t = 0; t < k; t++) s += (double) tof(a[(size_t) i * k + t]) * tof(b[(size_t) j * k + t]);
            c[(size_t) i * n + j] = s;
        }
    return c;
}

template <int STAGES, bool REG>
static void mlaCase(const char* kernel, const std::vector<int>& lens, int heads, int page, int splits) {
    constexpr int DL = 512, D = 576;
    int batch = (int) lens.size(), maxLen = *std::max_element(lens.begin(), lens.end());
    int maxPages = (maxLen + page - 1) / page, pages = batch * maxPages + 3;
    std::vector<int> perm(pages);
    for (int i = 0; i < pages; i++) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<int> table(perm.begin(), perm.begin() + batch * maxPages);
    auto q = bf(gauss((size_t) batch * heads * D));
    auto cache = bf(gauss((size_t) pages * page * D));
    float scale = 1 / std::sqrt(192.f);
    std::vector<double> w((size_t) batch * heads * DL);
    for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++) {
            std::vector<double> s(lens[b]);
            double m = -INFINITY, sum = 0;
            for (int p = 0; p < lens[b]; p++) {
                size_t row = (size_t) (table[b * maxPages + p / page] * page + p % page) * D;
                double acc = 0;
                for (int d = 0; d < D; d++) acc += (double) tof(q[((size_t) b * heads + h) * D + d]) * tof(cache[row + d]);
                s[p] = acc * scale;
                m = std::max(m, s[p]);
            }
            for (double& v : s) sum += v = std::exp(v - m);
            for (int d = 0; d < DL; d++) {
                double o = 0;
                for (int p = 0; p < lens[b]; p++)
                    o += s[p] / sum * tof(cache[(size_t) (table[b * maxPages + p / page] * page + p % page) * D + d]);
                w[((size_t) b * heads + h) * DL + d] = o;
            }
        }
    auto oPart = nans((size_t) batch * heads * splits * DL);
    auto lse = nans((size_t) batch * heads * splits);
    auto out = nans((size_t) batch * heads * DL);
    unsigned groups = (heads + MLA_HEADS - 1) / MLA_HEADS;
    emuLaunch({groups, (unsigned) splits, (unsigned) batch}, MLA_THREADS, MlaSmem<DL, 64, STAGES>::TOTAL, [&] {
        mla_decode_split_impl<DL, 64, STAGES, REG>(q.data(), cache.data(), table.data(), lens.data(), oPart.data(),
                                                   lse.data(), heads, maxPages, page, splits, scale);
    });
    emuLaunch({(unsigned) (batch * heads)}, 128, 0,
              [&] { mla_decode_merge(oPart.data(), lse.data(), out.data(), splits, DL); });
    std::string l;
    for (int x : lens) l += std::to_string(x) + ",";
    check(std::string(kernel) + " + merge lens " + l + " h" + std::to_string(heads) + " page" + std::to_string(page) +
                  " splits " + std::to_string(splits),
          out, w, 1e-2);
}

static void linearAndMla() {
    for (int bfW = 0; bfW < 2; bfW++) {
        for (int cols : {1001, 1024}) {  // scalar path, 16-byte vector path
            int rows = 37, batch = 11;
            auto wf = gauss((size_t) rows * cols, 0.05);
            auto wb = bf(wf);
            auto x = gauss((size_t) batch * cols);
            auto out = nans((size_t) batch * rows);
            std::vector<double> w(out.size());
            for (int b = 0; b < batch; b++)
                for (int r = 0; r < rows; r++) {
                    double s = 0;
                    for (int c = 0; c < cols; c++)
                        s += (bfW ? tof(wb[(size_t) r * cols + c]) : wf[(size_t) r * cols + c]) * (double) x[(size_t) b * cols + c];
                    w[(size_t) b * rows + r] = s;
                }
            emuLaunch({(unsigned) (rows + 7) / 8}, 256, 0, [&] {
                if (bfW) linear_bf16w_f32(wb.data(), x.data(), out.data(), rows, cols, batch);
                else linear_f32w_f32(wf.data(), x.data(), out.data(), rows, cols, batch);
            });
            check(std::string(bfW ? "linear_bf16w_f32" : "linear_f32w_f32") + " 37x" + std::to_string(cols) + " b11",
                  out, w, 1e-5);
        }
    }
    // The staged kernels (batches above 8) against the double reference and bit for bit against linear_*w_f32:
    // rows not a multiple of 32 (a block's rows) or 4 (a warp's), batch not a multiple of 16 (a pass), columns
    // not a multiple of 512 (a staged chunk) on the vector path and odd on the scalar path.
    for (int bfW = 0; bfW < 2; bfW++) {
        for (auto [rows, cols, batch] : {std::tuple{70, 1000, 37}, std::tuple{37, 1001, 17}, std::tuple{5, 1536, 9}}) {
            auto wf = gauss((size_t) rows * cols, 0.05);
            auto wb = bf(wf);
            auto x = gauss((size_t) batch * cols);
            auto warpRow = nans((size_t) batch * rows), staged = nans((size_t) batch * rows);
            std::vector<double> w(staged.size());
            for (int b = 0; b < batch; b++)
                for (int r = 0; r < rows; r++) {
                    double s = 0;
                    for (int c = 0; c < cols; c++)
                        s += (bfW ? tof(wb[(size_t) r * cols + c]) : wf[(size_t) r * cols + c]) * (double) x[(size_t) b * cols + c];
                    w[(size_t) b * rows + r] = s;
                }
            emuLaunch({(unsigned) (rows + 7) / 8}, 256, 0, [&] {
                if (bfW) linear_bf16w_f32(wb.data(), x.data(), warpRow.data(), rows, cols, batch);
                else linear_f32w_f32(wf.data(), x.data(), warpRow.data(), rows, cols, batch);
            });
            emuLaunch({(unsigned) (rows + 31) / 32}, 256, 0, [&] {
                if (bfW) linear_bf16w_f32_xs(wb.data(), x.data(), staged.data(), rows, cols, batch);
                else linear_f32w_f32_xs(wf.data(), x.data(), staged.data(), rows, cols, batch);
            });
            std::string what = std::string(bfW ? "linear_bf16w_f32_xs " : "linear_f32w_f32_xs ") + std::to_string(rows) +
                               "x" + std::to_string(cols) + " b" + std::to_string(batch);
            check(what, staged, w, 1e-5);
            check(what + " = linear_*w_f32 bit for bit", staged, dbl(warpRow), 0);
        }
    }
    {  // route_by_expert past one staged chunk of ids (2048) and past one expert per thread (256)
        const int tokens = 700, k = 4, E = 300, pairs = tokens * k;
        std::vector<int> ids(pairs);
        for (int t = 0; t < tokens; t++) {
            std::vector<int> all(E);
            for (int e = 0; e < E; e++) all[e] = e;
            std::shuffle(all.begin(), all.end(), rng);
            for (int j = 0; j < k; j++) ids[t * k + j] = all[j];
        }
        ids[2100] = -1;
        std::vector<int> offsets(E + 1, -7), slotOfPair(pairs, -7), tokenOfSlot(pairs, -7);
        emuLaunch({1}, 256, 0, [&] {
            route_by_expert(ids.data(), pairs, k, E, offsets.data(), slotOfPair.data(), tokenOfSlot.data());
        });
        std::vector<int> wantOff(E + 1, 0), wantSlot(pairs, -1), wantTok(pairs, -1);
        for (int i = 0; i < pairs; i++) if (ids[i] >= 0 && ids[i] < E) wantOff[ids[i] + 1]++;
        for (int e = 0; e < E; e++) wantOff[e + 1] += wantOff[e];
        std::vector<int> fill(wantOff);
        for (int i = 0; i < pairs; i++)
            if (ids[i] >= 0) { wantSlot[i] = fill[ids[i]]; wantTok[fill[ids[i]]++] = i / k; }
        std::vector<float> got;
        std::vector<double> want;
        for (auto [g, w] : {std::pair{&offsets, &wantOff}, std::pair{&slotOfPair, &wantSlot}, std::pair{&tokenOfSlot, &wantTok}}) {
            got.insert(got.end(), g->begin(), g->end());
            want.insert(want.end(), w->begin(), w->end());
        }
        check("route_by_expert 700x4 of 300, one id out of range", got, want, 0);
    }
    {  // routed experts on the device: route_by_expert, grouped_linear_*w_f32, combine_experts_f32
        const int tokens = 13, k = 3, E = 7, rows = 20, cols = 45, pairs = tokens * k;
        std::vector<int> ids(pairs);
        for (int t = 0; t < tokens; t++) {
            std::vector<int> all(E);
            for (int e = 0; e < E; e++) all[e] = e;
            std::shuffle(all.begin(), all.end(), rng);
            for (int j = 0; j < k; j++) ids[t * k + j] = t == 4 ? 2 + j : all[j];  // experts 2..4 for token 4
        }
        ids[7] = 9;  // out of range: dropped
        std::vector<int> offsets(E + 1, -7), slotOfPair(pairs, -7), tokenOfSlot(pairs, -7);
        emuLaunch({1}, 256, 0, [&] {
            route_by_expert(ids.data(), pairs, k, E, offsets.data(), slotOfPair.data(), tokenOfSlot.data());
        });
        std::vector<int> wantOff(E + 1, 0), wantSlot(pairs, -1), wantTok(pairs, -1);
        for (int i = 0; i < pairs; i++) if (ids[i] >= 0 && ids[i] < E) wantOff[ids[i] + 1]++;
        for (int e = 0; e < E; e++) wantOff[e + 1] += wantOff[e];
        std::vector<int> fill(wantOff);
        for (int e = 0; e < E; e++)
            for (int i = 0; i < pairs; i++)
                if (ids[i] == e) { wantSlot[i] = fill[e]; wantTok[fill[e]++] = i / k; }
        auto asF = [](const std::vector<int>& v) { return std::vector<float>(v.begin(), v.end()); };
        auto asD = [](const std::vector<int>& v) { return std::vector<double>(v.begin(), v.end()); };
        check("route_by_expert 13x3 of 7, one id out of range: offsets", asF(offsets), asD(wantOff), 0);
        check("route_by_expert: slot of each pair", asF(slotOfPair), asD(wantSlot), 0);
        check("route_by_expert: token of each slot", asF(tokenOfSlot), asD(wantTok), 0);

        auto x = gauss((size_t) tokens * cols);
        std::vector<float> xin((size_t) pairs * cols, NAN);
        for (int s2 = 0; s2 < wantOff[E]; s2++)
            std::copy(x.begin() + (size_t) wantTok[s2] * cols, x.begin() + (size_t) (wantTok[s2] + 1) * cols,
                      xin.begin() + (size_t) s2 * cols);
        auto wf = gauss((size_t) E * rows * cols, 0.05);
        auto wb = bf(wf);
        for (int bfW = 0; bfW < 2; bfW++) {
            auto grouped = nans((size_t) pairs * rows), alone = nans((size_t) pairs * rows);
            emuLaunch({(unsigned) (rows + 7) / 8, (unsigned) E}, 256, 0, [&] {
                if (bfW) grouped_linear_bf16w_f32(wb.data(), xin.data(), grouped.data(), offsets.data(), rows, cols);
                else grouped_linear_f32w_f32(wf.data(), xin.data(), grouped.data(), offsets.data(), rows, cols);
            });
            for (int e = 0; e < E; e++) {
                int n = wantOff[e + 1] - wantOff[e];
                if (n == 0) continue;
                size_t wo = (size_t) e * rows * cols, xo = (size_t) wantOff[e] * cols, oo = (size_t) wantOff[e] * rows;
                emuLaunch({(unsigned) (rows + 7) / 8}, 256, 0, [&] {
                    if (bfW) linear_bf16w_f32(wb.data() + wo, xin.data() + xo, alone.data() + oo, rows, cols, n);
                    else linear_f32w_f32(wf.data() + wo, xin.data() + xo, alone.data() + oo, rows, cols, n);
                });
            }
            auto staged = nans((size_t) pairs * rows);
            emuLaunch({(unsigned) (rows + 31) / 32, (unsigned) E}, 256, 0, [&] {
                if (bfW) grouped_linear_bf16w_f32_xs(wb.data(), xin.data(), staged.data(), offsets.data(), rows, cols);
                else grouped_linear_f32w_f32_xs(wf.data(), xin.data(), staged.data(), offsets.data(), rows, cols);
            });
            std::vector<float> g2(grouped.begin(), grouped.begin() + (size_t) wantOff[E] * rows);
            std::vector<float> s2(staged.begin(), staged.begin() + (size_t) wantOff[E] * rows);
            std::vector<float> a2(alone.begin(), alone.begin() + (size_t) wantOff[E] * rows);
            check(std::string(bfW ? "grouped_linear_bf16w_f32" : "grouped_linear_f32w_f32") +
                          " 7 experts 20x45 = linear_*w_f32 per expert bit for bit", g2, dbl(a2), 0);
            check(std::string(bfW ? "grouped_linear_bf16w_f32_xs" : "grouped_linear_f32w_f32_xs") +
                          " 7 experts 20x45 = linear_*w_f32 per expert bit for bit", s2, dbl(a2), 0);
        }
        // combine: the bits of zero + scatter_add_rows_f32 per expert in ascending id
        auto y = gauss((size_t) pairs * rows);
        auto wts = gauss(pairs);
        auto out = nans((size_t) tokens * rows);
        emuLaunch({(unsigned) tokens}, rowThreads(rows), 0, [&] {
            combine_experts_f32(y.data(), ids.data(), wts.data(), slotOfPair.data(), k, out.data(), rows);
        });
        std::vector<float> scat((size_t) tokens * rows, 0.f), wSlot(pairs, 0.f);
        std::vector<double> ref((size_t) tokens * rows, 0.0);
        for (int i = 0; i < pairs; i++) if (wantSlot[i] >= 0) wSlot[wantSlot[i]] = wts[i];
        for (int e = 0; e < E; e++) {
            int n = wantOff[e + 1] - wantOff[e];
            if (n == 0) continue;
            emuLaunch({(unsigned) n}, rowThreads(rows), 0, [&] {
                scatter_add_rows_f32(y.data() + (size_t) wantOff[e] * rows, wantTok.data(), wSlot.data(), wantOff[e], scat.data(),
                                     rows, tokens);
            });
        }
        for (int i = 0; i < pairs; i++)
            if (wantSlot[i] >= 0)
                for (int c = 0; c < rows; c++)
                    ref[(size_t) (i / k) * rows + c] += (double) wts[i] * y[(size_t) wantSlot[i] * rows + c];
        check("combine_experts_f32 13x3, one pair dropped", out, ref, 1e-6);
        check("combine_experts_f32 = zero + scatter_add_rows_f32 by ascending expert, bit for bit", out, dbl(scat), 0);
    }
    {  // tensor-core GEMM with ragged edges
        int m = 100, n = 77, k = 72;
        auto a = bf(gauss((size_t) m * k)), b = bf(gauss((size_t) n * k, 0.05));
        auto c = nans((size_t) m * n);
        emuLaunch({(unsigned) (n + 63) / 64, (unsigned) (m + 63) / 64}, 128, 0,
                  [&] { gemm_bf16_tc(a.data(), b.data(), c.data(), m, n, k); });
        check("gemm_bf16_tc 100x77x72", c, gemmRef(a, b, m, n, k), 1e-5);
        std::vector<int> rowsPer = {3, 0, 70, 17};
        std::vector<int> off = {0};
        for (int r : rowsPer) off.push_back(off.back() + r);
        int E = (int) rowsPer.size(), N = 33, K = 45, total = off.back();
        auto A = bf(gauss((size_t) total * K)), W = bf(gauss((size_t) E * N * K, 0.05));
        auto C = nans((size_t) total * N);
        std::vector<double> want((size_t) total * N);
        for (int e = 0; e < E; e++) {
            if (rowsPer[e] == 0) continue;
            std::vector<__nv_bfloat16> ae(A.begin() + (size_t) off[e] * K, A.begin() + (size_t) off[e + 1] * K);
            std::vector<__nv_bfloat16> we(W.begin() + (size_t) e * N * K, W.begin() + (size_t) (e + 1) * N * K);
            auto ce = gemmRef(ae, we, rowsPer[e], N, K);
            std::copy(ce.begin(), ce.end(), want.begin() + (size_t) off[e] * N);
        }
        emuLaunch({(unsigned) (N + 63) / 64, (unsigned) (70 + 63) / 64, (unsigned) E}, 128, 0,
                  [&] { grouped_gemm_bf16_tc(A.data(), W.data(), C.data(), off.data(), N, K); });
        check("grouped_gemm_bf16_tc [3,0,70,17]x33x45", C, want, 1e-5);
    }
    // MLA decode (V3 shapes) on the wmma model: both accumulator variants, one and two stages, empty splits
    mlaCase<2, true>("mla_decode_split_512_64_s2", {1, 63, 64, 200}, 20, 16, 2);
    mlaCase<1, true>("mla_decode_split_512_64_s1", {65, 3}, 3, 7, 1);
    mlaCase<2, false>("mla_decode_split_512_64_s2_smem_o", {1, 130}, 17, 16, 3);
    mlaCase<2, true>("mla_decode_split_512_64_s2", {5, 130}, 16, 64, 3);
    mlaCase<2, true>("mla_decode_split_512_64_s2", {0, 70}, 16, 64, 2);  // an empty sequence: zeros, not 0/0
    // Very different lengths under many splits (as MlaSplitPlan plans for one long sequence among short ones):
    // short and empty sequences leave most of their splits empty, the long one is cut into 1-tile pieces.
    mlaCase<2, true>("mla_decode_split_512_64_s2", {0, 1, 700, 3, 65}, 16, 16, 11);
    mlaCase<1, true>("mla_decode_split_512_64_s1", {300, 0, 2}, 5, 32, 5);
}
