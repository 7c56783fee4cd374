package io.expertmesh.worker;

import io.expertmesh.telemetry.Buckets;
import io.expertmesh.telemetry.Telemetry;
import io.grpc.Status;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.trace.Span;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A worker's metrics and span attributes. {@code expertmesh.worker.expert.tokens} counts tokens per layer and
 * expert: layers × routed experts series (DeepSeek-V3: 58 × 256 = 14,848 per worker at most, fewer since a
 * worker holds a shard); fine for the models served today, and the first thing to aggregate away (drop the
 * expert attribute) if a metrics backend objects.
 */
public final class WorkerTelemetry implements RunExpertsObserver {
    static final AttributeKey<Long> LAYER = AttributeKey.longKey("layer");
    static final AttributeKey<Long> EXPERT = AttributeKey.longKey("expert");
    static final AttributeKey<String> STATUS = AttributeKey.stringKey("status");

    private final DoubleHistogram duration;
    private final LongCounter expertTokens;
    private final LongCounter tokens;
    private final Map<Long, Attributes> expertAttributes = new ConcurrentHashMap<>();
    private final Map<Long, Attributes> callAttributes = new ConcurrentHashMap<>();

    public WorkerTelemetry(Telemetry telemetry) {
        var meter = telemetry.meter();
        duration = meter.histogramBuilder("expertmesh.worker.run_experts.duration").setUnit("s")
                .setDescription("RunExperts calls: time in the service (validation, expert compute, encoding), "
                        + "by layer and status").setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
        expertTokens = meter.counterBuilder("expertmesh.worker.expert.tokens").setUnit("{token}")
                .setDescription("Tokens each routed expert computed, by layer and expert").build();
        tokens = meter.counterBuilder("expertmesh.worker.run_experts.tokens").setUnit("{token}")
                .setDescription("Tokens received in successful RunExperts calls, by layer").build();
    }

    @Override
    public void onTimes(int layer, long queueNanos, long computeNanos) {
        Span span = Span.current();
        if (span.isRecording()) {
            span.setAttribute("expertmesh.queue_us", queueNanos / 1000);
            span.setAttribute("expertmesh.compute_us", computeNanos / 1000);
        }
    }

    @Override
    public void onRunExperts(int layer, int tokenCount, int[] ids, int entries, long nanos, Status.Code code) {
        Span span = Span.current();
        if (span.isRecording()) {
            span.setAttribute("expertmesh.layer", layer);
            span.setAttribute("expertmesh.tokens", tokenCount);
            span.setAttribute("expertmesh.assignments", entries);
        }
        duration.record(nanos / 1e9, callAttributes.computeIfAbsent(((long) layer << 8) | code.ordinal(),
                k -> Attributes.of(LAYER, (long) layer, STATUS, code.name())));
        if (ids == null) {
            return;
        }
        tokens.add(tokenCount, callAttributes.computeIfAbsent(((long) layer << 8) | 0xff,
                k -> Attributes.of(LAYER, (long) layer)));
        int max = 0;
        for (int i = 0; i < entries; i++) {
            max = Math.max(max, ids[i]);
        }
        int[] perExpert = new int[max + 1];
        for (int i = 0; i < entries; i++) {
            perExpert[ids[i]]++;
        }
        for (int e = 0; e <= max; e++) {
            if (perExpert[e] > 0) {
                int expert = e;
                expertTokens.add(perExpert[e], expertAttributes.computeIfAbsent(((long) layer << 32) | expert,
                        k -> Attributes.of(LAYER, (long) layer, EXPERT, (long) expert)));
            }
        }
    }
}
