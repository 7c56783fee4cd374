package io.expertmesh.router.experts;

import io.expertmesh.telemetry.Base2Histogram;
import io.expertmesh.telemetry.LocalHistograms;
import io.grpc.Status;
import io.opentelemetry.api.common.Attributes;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the router measured of its expert dispatches, for its status API and hedging: RunExperts latency per
 * worker, whole-layer dispatch latency per MoE layer, where successful calls' time went, tokens sent to each
 * worker per layer (since the last rebalance), hedged calls. Latencies are recorded once, into the OpenTelemetry
 * instruments ({@link DispatchMeters}), and read back from them through {@link LocalHistograms}. Every event also
 * goes to the {@link DispatchObserver}.
 */
final class DispatchStats {
    private static final Logger LOG = LoggerFactory.getLogger(DispatchStats.class);
    /** A worker's hedging p99 is refreshed on each of its first answers, then on every this many. */
    private static final int P99_REFRESH_CALLS = 32;
    /**
     * Refreshes read the histograms again only when the last read is older than this: a read collects every
     * histogram of the process, so hot dispatch paths share them.
     */
    private static final Duration REFRESH_MAX_AGE = Duration.ofMillis(20);

    private final int numLayers;
    private final DispatchObserver observer;
    private final DispatchMeters meters;
    private final LocalHistograms histograms;
    private final Map<String, AtomicLongArray> workerTokens = new ConcurrentHashMap<>();
    private final AtomicLong hedges = new AtomicLong();

    DispatchStats(int numLayers, DispatchObserver observer, LocalHistograms histograms) {
        this.numLayers = numLayers;
        this.observer = observer;
        this.histograms = histograms;
        histograms.track(DispatchMeters.RPC_DURATION, DispatchMeters.LAYER_DURATION, DispatchMeters.RPC_QUEUE,
                DispatchMeters.RPC_COMPUTE, DispatchMeters.RPC_OVERHEAD);
        this.meters = new DispatchMeters(histograms.meter());
    }

    /** One RunExperts call of {@code layer} to {@code c} ended with {@code status} after {@code nanos}. */
    void onRpc(int layer, WorkerClient c, int tokens, long nanos, Status status) {
        meters.rpc(c.address(), tokens, nanos, status);
        long ok = c.recordCall(tokens, status.isOk());
        if (status.isOk()) {
            workerTokens.computeIfAbsent(c.address(), k -> new AtomicLongArray(numLayers)).addAndGet(layer, tokens);
            if (ok <= P99_REFRESH_CALLS || ok % P99_REFRESH_CALLS == 0) {
                refreshHedgeP99(c);
            }
        }
        observer.onRpc(layer, c.address(), tokens, nanos, status);
    }

    /**
     * Sets {@code c}'s hedging p99 from its successful calls of the last minute ({@link LocalHistograms#recent}:
     * twelve 5 s slots, the oldest dropping out as time moves on), so a slow start or an old stall stops
     * stretching its hedge time once it is a minute old. Calls count in the slot of the read that collected them;
     * reads follow every few answers of any worker, so under load that is within milliseconds of the answer. A
     * worker with no answer in that minute keeps its last p99: a worker that stopped answering is exactly the one
     * to hedge.
     */
    private void refreshHedgeP99(WorkerClient c) {
        histograms.collectIfOlderThan(REFRESH_MAX_AGE);
        Attributes ok = meters.rpc(c.address(), Status.Code.OK);
        Base2Histogram recent = histograms.recent(DispatchMeters.RPC_DURATION, ok::equals);
        if (recent.count() > 0) {
            c.hedgeP99Nanos((long) (recent.valueAtPercentile(99) * 1e9));
        }
    }

    /**
     * A successful call took {@code totalNanos} at the router, of which the worker reports {@code queueMicros}
     * waiting and {@code computeMicros} computing; the rest is overhead. Clock granularity can make the rest
     * slightly negative: it counts as zero.
     */
    void onRpcTimes(int layer, WorkerClient c, long totalNanos, long queueMicros, long computeMicros) {
        long overheadNanos = Math.max(0, totalNanos - (queueMicros + computeMicros) * 1000);
        long queueNanos = Math.max(0, queueMicros) * 1000;
        long computeNanos = Math.max(0, computeMicros) * 1000;
        meters.rpcTimes(c.address(), queueNanos, computeNanos, overheadNanos);
        observer.onRpcTimes(layer, c.address(), queueNanos, computeNanos, overheadNanos);
    }

    /** Reads what was recorded up to now, for the snapshots below. */
    void collect() {
        histograms.collect();
    }

    /** Where RunExperts time went, over every successful call since start (as of the last {@link #collect}). */
    ClusterStatus.Breakdown breakdown() {
        Base2Histogram q = histograms.total(DispatchMeters.RPC_QUEUE, a -> true);
        Base2Histogram c = histograms.total(DispatchMeters.RPC_COMPUTE, a -> true);
        Base2Histogram o = histograms.total(DispatchMeters.RPC_OVERHEAD, a -> true);
        return new ClusterStatus.Breakdown(q.count(), millis(q, 50), millis(q, 99), millis(c, 50), millis(c, 99),
                millis(o, 50), millis(o, 99));
    }

    private static double millis(Base2Histogram h, double percentile) {
        return h.valueAtPercentile(percentile) * 1000;
    }

    /** {@code c}'s counters and its successful calls' latency since start (as of the last {@link #collect}). */
    WorkerClient.Stats workerStats(WorkerClient c) {
        Attributes ok = meters.rpc(c.address(), Status.Code.OK);
        Base2Histogram h = histograms.total(DispatchMeters.RPC_DURATION, ok::equals);
        return c.stats(millis(h, 50), millis(h, 99));
    }

    /** {@code layer}'s dispatch latency since start (as of the last {@link #collect}). */
    Base2Histogram layerLatency(int layer) {
        Attributes a = meters.layer(layer);
        return histograms.total(DispatchMeters.LAYER_DURATION, a::equals);
    }

    /** A whole layer's dispatch (all workers, retries included) took {@code nanos}. */
    void onLayerDone(int layer, int tokens, long nanos) {
        meters.layer(layer, nanos);
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
}
