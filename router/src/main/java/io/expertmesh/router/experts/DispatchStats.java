package io.expertmesh.router.experts;

import io.grpc.Status;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the router measured of its expert dispatches, for its status API: whole-layer dispatch latency per MoE
 * layer, tokens sent to each worker per layer (since the last rebalance), hedged calls. Every event also goes to
 * the {@link DispatchObserver} (telemetry: OpenTelemetry metrics and spans).
 */
final class DispatchStats {
    private static final Logger LOG = LoggerFactory.getLogger(DispatchStats.class);

    private final int numLayers;
    private final DispatchObserver observer;
    private final Histogram[] layerMicros;
    private final Map<String, AtomicLongArray> workerTokens = new ConcurrentHashMap<>();
    private final AtomicLong hedges = new AtomicLong();
    private final Histogram queueMicros = new ConcurrentHistogram(3_600_000_000L, 2);
    private final Histogram computeMicros = new ConcurrentHistogram(3_600_000_000L, 2);
    private final Histogram overheadMicros = new ConcurrentHistogram(3_600_000_000L, 2);

    DispatchStats(int numLayers, int[] moeLayers, DispatchObserver observer) {
        this.numLayers = numLayers;
        this.observer = observer;
        this.layerMicros = new Histogram[numLayers];
        for (int l : moeLayers) {
            layerMicros[l] = new ConcurrentHistogram(3_600_000_000L, 2);
        }
    }

    /** One RunExperts call of {@code layer} to {@code c} ended with {@code status} after {@code nanos}. */
    void onRpc(int layer, WorkerClient c, int tokens, long nanos, Status status) {
        c.recordCall(nanos, tokens, status.isOk());
        if (status.isOk()) {
            workerTokens.computeIfAbsent(c.address(), k -> new AtomicLongArray(numLayers)).addAndGet(layer, tokens);
        }
        observer.onRpc(layer, c.address(), tokens, nanos, status);
    }

    /**
     * A successful call took {@code totalNanos} at the router, of which the worker reports {@code queueMicros}
     * waiting and {@code computeMicros} computing; the rest is overhead. Clock granularity can make the rest
     * slightly negative: it counts as zero.
     */
    void onRpcTimes(int layer, WorkerClient c, long totalNanos, long queueMicros, long computeMicros) {
        long overheadNanos = Math.max(0, totalNanos - (queueMicros + computeMicros) * 1000);
        record(this.queueMicros, queueMicros);
        record(this.computeMicros, computeMicros);
        record(this.overheadMicros, overheadNanos / 1000);
        observer.onRpcTimes(layer, c.address(), queueMicros * 1000, computeMicros * 1000, overheadNanos);
    }

    private static void record(Histogram h, long micros) {
        h.recordValue(Math.max(0, Math.min(micros, h.getHighestTrackableValue())));
    }

    /** Where RunExperts time went, over every successful call since start. */
    ClusterStatus.Breakdown breakdown() {
        Histogram q = queueMicros.copy();
        Histogram c = computeMicros.copy();
        Histogram o = overheadMicros.copy();
        return new ClusterStatus.Breakdown(q.getTotalCount(), millis(q, 50), millis(q, 99), millis(c, 50),
                millis(c, 99), millis(o, 50), millis(o, 99));
    }

    private static double millis(Histogram h, double percentile) {
        return h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(percentile) / 1000.0;
    }

    /** A whole layer's dispatch (all workers, retries included) took {@code nanos}. */
    void onLayerDone(int layer, int tokens, long nanos) {
        layerMicros[layer].recordValue(Math.min(nanos / 1000, layerMicros[layer].getHighestTrackableValue()));
        observer.onLayer(layer, tokens, nanos);
    }

    /** A call to {@code c} was given up on as slow after {@code nanos} and its pairs re-sent to replicas. */
    void onHedged(int layer, WorkerClient c, long nanos) {
        hedges.incrementAndGet();
        LOG.debug("Layer {}: call to expert worker {} unanswered after {} ms; re-sending its pairs to replicas",
                layer, c.address(), nanos / 1_000_000);
    }

    long hedges() {
        return hedges.get();
    }

    /** Tokens sent to {@code worker} for {@code layer} since the last {@link #resetTokens}. */
    long workerTokens(String worker, int layer) {
        AtomicLongArray a = workerTokens.get(worker);
        return a == null ? 0 : a.get(layer);
    }

    /** A rebalance starts a new observation window. */
    void resetTokens() {
        workerTokens.values().forEach(a -> {
            for (int l = 0; l < a.length(); l++) {
                a.set(l, 0);
            }
        });
    }

    /** A copy of {@code layer}'s dispatch latency histogram (microseconds). */
    Histogram layerLatency(int layer) {
        return layerMicros[layer].copy();
    }
}
