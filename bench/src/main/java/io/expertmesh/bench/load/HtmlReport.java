package io.expertmesh.bench.load;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * The {@code --report-html} file: one self-contained page (no scripts, fonts or links to fetch), with for every
 * run a summary table and, per latency metric, a histogram and a CDF drawn as inline SVG; for a sweep of two or
 * more runs, the throughput–latency curves (TTFT and TPOT, p50 and p99, against output token throughput).
 */
public final class HtmlReport {
    private static final int W = 420;
    private static final int H = 220;
    private static final int PAD_L = 56;
    private static final int PAD_B = 36;
    private static final int PAD_T = 24;
    private static final int PAD_R = 12;
    private static final int BINS = 30;

    private HtmlReport() {
    }

    /** Writes the page to {@code file}. */
    public static void write(Path file, Map<String, String> settings, List<BenchSummary> runs) throws IOException {
        Files.writeString(file, html(settings, runs), StandardCharsets.UTF_8);
    }

    /** The page. */
    public static String html(Map<String, String> settings, List<BenchSummary> runs) {
        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>expertmesh bench</title>\n<style>")
                .append("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;"
                        + "margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                        + "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
                        + ".charts{display:flex;flex-wrap:wrap;gap:8px}svg{background:#fff;border:1px solid #ddd}"
                        + "text{font-size:11px}")
                .append("</style></head><body>\n<h1>expertmesh bench</h1>\n<h2>Settings</h2>\n<table>");
        settings.forEach((k, v) -> sb.append("<tr><td>").append(esc(k)).append("</td><td>").append(esc(v))
                .append("</td></tr>"));
        sb.append("</table>\n");
        if (runs.size() >= 2) {
            sb.append("<h2>Throughput–latency</h2>\n<div class=\"charts\">");
            sb.append(curve("TTFT vs output throughput", runs, s -> s.ttft().p50(), s -> s.ttft().p99()));
            sb.append(curve("TPOT vs output throughput", runs, s -> s.tpot().p50(), s -> s.tpot().p99()));
            sb.append(curve("E2E vs output throughput", runs, s -> s.e2e().p50(), s -> s.e2e().p99()));
            sb.append("</div>\n");
        }
        for (BenchSummary run : runs) {
            sb.append("<h2>Run: ").append(esc(run.label())).append("</h2>\n");
            sb.append("<pre>").append(esc(run.text())).append("</pre>\n<div class=\"charts\">");
            double[] ttft = values(run, r -> r.ttftNanos() / 1e6);
            double[] tpot = values(run, r -> r.tpotNanos() / 1e6);
            double[] e2e = values(run, r -> r.e2eNanos() / 1e6);
            double[] itl = itlMillis(run);
            for (Object[] m : new Object[][] {{"TTFT", ttft}, {"TPOT", tpot}, {"ITL", itl}, {"E2E", e2e}}) {
                sb.append(histogram(m[0] + " histogram (ms)", (double[]) m[1]));
                sb.append(cdf(m[0] + " CDF (ms)", (double[]) m[1]));
            }
            sb.append("</div>\n");
        }
        sb.append("</body></html>\n");
        return sb.toString();
    }

    private static double[] values(BenchSummary run, ToDoubleFunction<RequestRecord> f) {
        return run.records().stream().mapToDouble(f).filter(Double::isFinite).filter(v -> v >= 0).sorted()
                .toArray();
    }

    /** Every token's inter-token latency of the run in ms, sorted, like the other metrics' values. */
    static double[] itlMillis(BenchSummary run) {
        return run.records().stream().flatMapToLong(r -> Arrays.stream(r.itlNanos())).mapToDouble(n -> n / 1e6)
                .filter(Double::isFinite).filter(v -> v >= 0).sorted().toArray();
    }

    /**
     * The empirical CDF's steps as (value, fraction) pairs, from (min, 0) to (max, 1): at each value of the
     * sorted data the fraction rises by 1/n. Sorts a copy: the drawing must not depend on the caller's order.
     */
    static double[][] cdfSteps(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        double[][] steps = new double[2 * sorted.length][];
        for (int i = 0; i < sorted.length; i++) {
            steps[2 * i] = new double[] {sorted[i], i / (double) sorted.length};
            steps[2 * i + 1] = new double[] {sorted[i], (i + 1) / (double) sorted.length};
        }
        return steps;
    }

    /**
     * The count axis of a histogram whose tallest bar is {@code top}: whole-number ticks from 0, at most five, the
     * last at or above {@code top} (counts are integers; a tick at 0.75 is a count nobody can have).
     */
    static int[] countTicks(int top) {
        int step = Math.max(1, (int) Math.ceil(Math.max(1, top) / 4.0));
        int n = (int) Math.ceil(Math.max(1, top) / (double) step);
        int[] ticks = new int[n + 1];
        for (int i = 0; i <= n; i++) {
            ticks[i] = i * step;
        }
        return ticks;
    }

    /** Bars of counts over {@link #BINS} equal bins from 0 to the largest value. */
    static String histogram(String title, double[] values) {
        StringBuilder sb = open(title);
        if (values.length == 0) {
            return close(sb.append(text(W / 2, H / 2, "no data", "middle")));
        }
        double max = Arrays.stream(values).max().orElse(1);
        max = max <= 0 ? 1 : max;
        int[] counts = new int[BINS];
        for (double v : values) {
            counts[Math.min(BINS - 1, (int) (v / max * BINS))]++;
        }
        int[] ticks = countTicks(Arrays.stream(counts).max().orElse(1));
        int top = ticks[ticks.length - 1];
        xAxis(sb, 0, max);
        yAxis(sb, Arrays.stream(ticks).asDoubleStream().toArray(), "count");
        double bw = (W - PAD_L - PAD_R) / (double) BINS;
        for (int i = 0; i < BINS; i++) {
            double h = counts[i] / (double) top * (H - PAD_T - PAD_B);
            sb.append(String.format(Locale.ROOT,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4a7ebb\"/>",
                    PAD_L + i * bw, H - PAD_B - h, Math.max(0.5, bw - 1), h));
        }
        return close(sb);
    }

    /** The empirical CDF of {@code values} (any order). */
    static String cdf(String title, double[] values) {
        StringBuilder sb = open(title);
        if (values.length == 0) {
            return close(sb.append(text(W / 2, H / 2, "no data", "middle")));
        }
        double[][] steps = cdfSteps(values);
        double largest = steps[steps.length - 1][0];
        double max = largest <= 0 ? 1 : largest;
        axes(sb, 0, max, 0, 1, "fraction");
        StringBuilder pts = new StringBuilder();
        pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", x(0, 0, max), y(0, 0, 1)));
        for (double[] step : steps) {
            pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", x(step[0], 0, max), y(step[1], 0, 1)));
        }
        sb.append("<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"1.5\" points=\"").append(pts)
                .append("\"/>");
        return close(sb);
    }

    /** Latency p50 and p99 against output throughput, one point per run, labelled with the run. */
    static String curve(String title, List<BenchSummary> runs, ToDoubleFunction<BenchSummary> p50,
                        ToDoubleFunction<BenchSummary> p99) {
        StringBuilder sb = open(title);
        double xmax = runs.stream().mapToDouble(BenchSummary::outputThroughput).filter(Double::isFinite).max()
                .orElse(1);
        double ymax = runs.stream().mapToDouble(p99).filter(Double::isFinite).max().orElse(1);
        xmax = xmax <= 0 ? 1 : xmax * 1.05;
        ymax = ymax <= 0 ? 1 : ymax * 1.05;
        axes(sb, 0, xmax, 0, ymax, "ms");
        sb.append(text(W - PAD_R, H - 4, "output tok/s", "end"));
        String[] colours = {"#4a7ebb", "#c0392b"};
        String[] names = {"p50", "p99"};
        List<ToDoubleFunction<BenchSummary>> series = List.of(p50, p99);
        for (int s = 0; s < 2; s++) {
            StringBuilder pts = new StringBuilder();
            for (BenchSummary r : runs) {
                double v = series.get(s).applyAsDouble(r);
                if (!Double.isFinite(v)) {
                    continue;
                }
                double px = x(r.outputThroughput(), 0, xmax);
                double py = y(v, 0, ymax);
                pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", px, py));
                sb.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", px,
                        py, colours[s]));
                if (s == 1) {
                    boolean right = px > W - 80; // keep labels near the right edge inside the chart
                    sb.append(text(right ? px - 4 : px + 4, py - 4, r.label(), right ? "end" : "start"));
                }
            }
            sb.append("<polyline fill=\"none\" stroke=\"").append(colours[s]).append("\" points=\"").append(pts)
                    .append("\"/>");
            sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>", PAD_L + 8 + 40 * s,
                    PAD_T + 12, colours[s], names[s]));
        }
        return close(sb);
    }

    private static StringBuilder open(String title) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">", W, H,
                W, H));
        sb.append(text(W / 2.0, 15, title, "middle"));
        return sb;
    }

    private static String close(StringBuilder sb) {
        return sb.append("</svg>\n").toString();
    }

    private static void axes(StringBuilder sb, double x0, double x1, double y0, double y1, String yName) {
        xAxis(sb, x0, x1);
        double[] yTicks = new double[5];
        for (int i = 0; i <= 4; i++) {
            yTicks[i] = y0 + (y1 - y0) * i / 4;
        }
        yAxis(sb, yTicks, yName);
    }

    private static void xAxis(StringBuilder sb, double x0, double x1) {
        sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>",
                PAD_L, H - PAD_B, W - PAD_R, H - PAD_B));
        for (int i = 0; i <= 4; i++) {
            double xv = x0 + (x1 - x0) * i / 4;
            sb.append(text(x(xv, x0, x1), H - PAD_B + 14, num(xv), "middle"));
        }
    }

    /** The y axis from {@code ticks[0]} to the last tick, labelled at each tick. */
    private static void yAxis(StringBuilder sb, double[] ticks, String yName) {
        sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>",
                PAD_L, PAD_T, PAD_L, H - PAD_B));
        double y0 = ticks[0];
        double y1 = ticks[ticks.length - 1];
        for (double t : ticks) {
            sb.append(text(PAD_L - 4, y(t, y0, y1) + 4, num(t), "end"));
        }
        sb.append(text(4, PAD_T - 6, yName, "start"));
    }

    private static double x(double v, double x0, double x1) {
        return PAD_L + (v - x0) / (x1 - x0) * (W - PAD_L - PAD_R);
    }

    private static double y(double v, double y0, double y1) {
        return H - PAD_B - (v - y0) / (y1 - y0) * (H - PAD_T - PAD_B);
    }

    private static String text(double x, double y, String s, String anchor) {
        return String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>", x, y, anchor,
                esc(s));
    }

    private static String num(double v) {
        return Math.abs(v) >= 100 || v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v)
                : String.format(Locale.ROOT, "%.2g", v);
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
