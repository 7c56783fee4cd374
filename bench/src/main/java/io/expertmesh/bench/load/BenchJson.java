package io.expertmesh.bench.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The {@code --result-json} file: the settings, then one object per run (one per rate of a sweep) with the
 * summary metrics (names as vLLM's {@code benchmark_serving} where one exists, times in milliseconds) and the
 * per-request TTFT, E2E and token counts. Non-finite numbers (an infinite rate, a metric with no values) are
 * written as {@code null}.
 */
public final class BenchJson {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private BenchJson() {
    }

    /** The whole result document. */
    public static ObjectNode document(Map<String, String> settings, List<BenchSummary> runs) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode s = root.putObject("settings");
        settings.forEach(s::put);
        ArrayNode arr = root.putArray("runs");
        runs.forEach(r -> arr.add(run(r)));
        return root;
    }

    /** Writes {@link #document} to {@code file}. */
    public static void write(Path file, Map<String, String> settings, List<BenchSummary> runs) throws IOException {
        JSON.writeValue(file.toFile(), document(settings, runs));
    }

    static ObjectNode run(BenchSummary r) {
        ObjectNode n = JSON.createObjectNode();
        n.put("label", r.label());
        num(n, "request_rate", r.requestRate());
        n.put("max_concurrency", r.maxConcurrency());
        num(n, "duration_s", r.durationSeconds());
        n.put("completed", r.completed());
        n.put("failed", r.failed());
        ObjectNode errors = n.putObject("errors");
        r.errors().forEach(errors::put);
        n.put("total_input_tokens", r.inputTokens());
        n.put("total_output_tokens", r.outputTokens());
        n.put("cached_prompt_tokens", r.cachedPromptTokens());
        num(n, "request_throughput", r.requestThroughput());
        num(n, "input_throughput", r.inputThroughput());
        num(n, "output_throughput", r.outputThroughput());
        num(n, "total_token_throughput", r.inputThroughput() + r.outputThroughput());
        n.put("slo", r.slo().toString());
        num(n, "request_goodput", r.goodput());
        n.put("good_requests", r.goodRequests());
        num(n, "prefix_cache_hit_rate", r.prefixHitRate());
        stats(n, "ttft", r.ttft());
        stats(n, "tpot", r.tpot());
        stats(n, "itl", r.itl());
        stats(n, "e2el", r.e2e());
        ArrayNode reqs = n.putArray("requests");
        for (RequestRecord rec : r.records()) {
            ObjectNode q = reqs.addObject();
            num(q, "ttft_ms", rec.ttftNanos() / 1e6);
            num(q, "tpot_ms", rec.tpotNanos() / 1e6);
            num(q, "e2el_ms", rec.e2eNanos() / 1e6);
            q.put("prompt_tokens", rec.promptTokens());
            q.put("output_tokens", rec.outputTokens());
            q.put("cached_prompt_tokens", rec.cachedPromptTokens());
        }
        return n;
    }

    private static void stats(ObjectNode n, String name, LatencyStats s) {
        num(n, "mean_" + name + "_ms", s.mean());
        num(n, "p50_" + name + "_ms", s.p50());
        num(n, "p90_" + name + "_ms", s.p90());
        num(n, "p99_" + name + "_ms", s.p99());
        num(n, "min_" + name + "_ms", s.min());
        num(n, "max_" + name + "_ms", s.max());
        n.put("count_" + name, s.count());
    }

    private static void num(ObjectNode n, String name, double v) {
        if (Double.isFinite(v)) {
            n.put(name, v);
        } else {
            n.putNull(name);
        }
    }
}
