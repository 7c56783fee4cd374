package io.expertmesh.bench.load;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The numbers of one benchmark run (one request rate of a sweep), computed from the request records.
 *
 * @param label              what distinguishes this run (the request rate or the concurrency)
 * @param requestRate        offered requests per second (infinite: all at once)
 * @param maxConcurrency     the concurrency limit, 0 for none
 * @param durationSeconds    from the first measured request's start to the last one's end
 * @param completed          requests that succeeded
 * @param failed             requests that failed
 * @param errors             failed requests by gRPC status code name
 * @param inputTokens        prompt tokens of the successful requests
 * @param outputTokens       output tokens of the successful requests
 * @param cachedPromptTokens prompt tokens the router served from its prefix cache
 * @param requestThroughput  successful requests per second
 * @param inputThroughput    prompt tokens per second
 * @param outputThroughput   output tokens per second
 * @param goodput            requests meeting every SLO per second
 * @param goodRequests       requests meeting every SLO
 * @param slo                the objectives
 * @param prefixHitRate      cached prompt tokens / prompt tokens
 * @param ttft               time to first token
 * @param tpot               time per output token after the first
 * @param itl                inter-token latency, per token
 * @param e2e                end-to-end latency
 * @param records            the successful requests (for distributions in the HTML report)
 */
public record BenchSummary(String label, double requestRate, int maxConcurrency, double durationSeconds,
                           int completed, int failed, Map<String, Integer> errors, long inputTokens,
                           long outputTokens, long cachedPromptTokens, double requestThroughput,
                           double inputThroughput, double outputThroughput, double goodput, int goodRequests,
                           Slo slo, double prefixHitRate, LatencyStats ttft, LatencyStats tpot, LatencyStats itl,
                           LatencyStats e2e, List<RequestRecord> records) {

    /** Aggregates {@code records} of a run that lasted {@code durationNanos}. */
    public static BenchSummary of(String label, double requestRate, int maxConcurrency, long durationNanos,
                                  List<RequestRecord> records, Slo slo) {
        LatencyStats.Recorder ttft = new LatencyStats.Recorder();
        LatencyStats.Recorder tpot = new LatencyStats.Recorder();
        LatencyStats.Recorder itl = new LatencyStats.Recorder();
        LatencyStats.Recorder e2e = new LatencyStats.Recorder();
        Map<String, Integer> errors = new TreeMap<>();
        List<RequestRecord> ok = new ArrayList<>();
        long input = 0;
        long output = 0;
        long cached = 0;
        int good = 0;
        for (RequestRecord r : records) {
            if (!r.ok()) {
                errors.merge(r.error().name(), 1, Integer::sum);
                continue;
            }
            ok.add(r);
            input += r.promptTokens();
            output += r.outputTokens();
            cached += r.cachedPromptTokens();
            ttft.recordNanos(r.ttftNanos());
            tpot.recordNanos(r.tpotNanos());
            e2e.recordNanos(r.e2eNanos());
            for (long gap : r.itlNanos()) {
                itl.recordNanos(gap);
            }
            if (slo.met(r)) {
                good++;
            }
        }
        double seconds = durationNanos / 1e9;
        return new BenchSummary(label, requestRate, maxConcurrency, seconds, ok.size(), records.size() - ok.size(),
                errors, input, output, cached, per(ok.size(), seconds), per(input, seconds), per(output, seconds),
                per(good, seconds), good, slo, input == 0 ? 0 : (double) cached / input, ttft.stats(),
                tpot.stats(), itl.stats(), e2e.stats(), List.copyOf(ok));
    }

    private static double per(double amount, double seconds) {
        return seconds <= 0 ? 0 : amount / seconds;
    }

    /** The summary as vLLM's {@code benchmark_serving} prints it, one metric a line. */
    public String text() {
        StringBuilder sb = new StringBuilder();
        String title = " Serving Benchmark Result (" + label + ") ";
        int pad = Math.max(0, 60 - title.length());
        sb.append("=".repeat(pad / 2)).append(title).append("=".repeat(pad - pad / 2)).append('\n');
        line(sb, "Successful requests:", Integer.toString(completed));
        line(sb, "Failed requests:", Integer.toString(failed));
        errors.forEach((code, n) -> line(sb, "  " + code + ":", Integer.toString(n)));
        line(sb, "Benchmark duration (s):", f(durationSeconds));
        line(sb, "Total input tokens:", Long.toString(inputTokens));
        line(sb, "Total generated tokens:", Long.toString(outputTokens));
        line(sb, "Request throughput (req/s):", f(requestThroughput));
        if (!slo.none()) {
            line(sb, "Request goodput (req/s) [" + slo + "]:", f(goodput));
        }
        line(sb, "Output token throughput (tok/s):", f(outputThroughput));
        line(sb, "Input token throughput (tok/s):", f(inputThroughput));
        line(sb, "Total token throughput (tok/s):", f(inputThroughput + outputThroughput));
        line(sb, "Prefix cache hit rate:", String.format(java.util.Locale.ROOT, "%.1f%%", 100 * prefixHitRate));
        metric(sb, "Time to First Token", "TTFT", ttft);
        metric(sb, "Time per Output Token (excl. 1st token)", "TPOT", tpot);
        metric(sb, "Inter-token Latency", "ITL", itl);
        metric(sb, "End-to-end Latency", "E2E", e2e);
        sb.append("=".repeat(60)).append('\n');
        return sb.toString();
    }

    private static void metric(StringBuilder sb, String title, String name, LatencyStats s) {
        int pad = Math.max(0, 60 - title.length() - 2);
        sb.append("-".repeat(pad / 2)).append(' ').append(title).append(' ').append("-".repeat(pad - pad / 2))
                .append('\n');
        line(sb, "Mean " + name + " (ms):", f(s.mean()));
        line(sb, "P50 " + name + " (ms):", f(s.p50()));
        line(sb, "P90 " + name + " (ms):", f(s.p90()));
        line(sb, "P99 " + name + " (ms):", f(s.p99()));
    }

    private static void line(StringBuilder sb, String name, String value) {
        sb.append(String.format(java.util.Locale.ROOT, "%-48s%12s%n", name, value));
    }

    private static String f(double d) {
        return Double.isNaN(d) ? "n/a" : Double.isInfinite(d) ? "inf" : String.format(java.util.Locale.ROOT,
                "%.2f", d);
    }
}
