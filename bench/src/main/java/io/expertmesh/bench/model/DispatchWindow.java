package io.expertmesh.bench.model;

import io.expertmesh.router.experts.DispatchObserver;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * The dispatch times of one measured window, for {@code bench-model --workers}: each successful RunExperts call's
 * worker queueing, compute and overhead, and each layer's whole dispatch, recorded from {@link #open} until
 * {@link #close}. The cluster's own status sums every call since it started, warm-up included, and a remote
 * configuration's first few thousand calls run before the JIT has compiled the transport (on loopback here a
 * plain gRPC call took 650-990 µs in its first 3,000 and 80-140 µs after about 25,000), so the figures printed
 * beside a measurement are this window's only.
 */
final class DispatchWindow implements DispatchObserver {
    private final Recorder queue = new Recorder(3);
    private final Recorder compute = new Recorder(3);
    private final Recorder overhead = new Recorder(3);
    private final Recorder layer = new Recorder(3);

    /** One window's percentiles, in milliseconds. */
    record Times(long calls, double queueP50, double queueP99, double computeP50, double computeP99,
                 double overheadP50, double overheadP99, double layerP50, double layerP99) {
    }

    @Override
    public void onRpcTimes(int layerIndex, String worker, long queueNanos, long computeNanos, long overheadNanos) {
        queue.recordValue(Math.max(0, queueNanos));
        compute.recordValue(Math.max(0, computeNanos));
        overhead.recordValue(Math.max(0, overheadNanos));
    }

    @Override
    public void onLayer(int layerIndex, int tokens, long nanos) {
        layer.recordValue(Math.max(0, nanos));
    }

    /** Starts a window: what was recorded before is dropped. */
    void open() {
        queue.getIntervalHistogram();
        compute.getIntervalHistogram();
        overhead.getIntervalHistogram();
        layer.getIntervalHistogram();
    }

    /** Ends the window opened last: its percentiles. */
    Times close() {
        Histogram q = queue.getIntervalHistogram();
        Histogram c = compute.getIntervalHistogram();
        Histogram o = overhead.getIntervalHistogram();
        Histogram l = layer.getIntervalHistogram();
        return new Times(o.getTotalCount(), ms(q, 50), ms(q, 99), ms(c, 50), ms(c, 99), ms(o, 50), ms(o, 99),
                ms(l, 50), ms(l, 99));
    }

    private static double ms(Histogram h, double percentile) {
        return h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(percentile) / 1e6;
    }
}
