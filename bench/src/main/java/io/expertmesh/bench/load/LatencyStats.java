package io.expertmesh.bench.load;

import org.HdrHistogram.Histogram;

/**
 * Summary of one latency metric in milliseconds: the exact mean, and percentiles from an HdrHistogram recorded in
 * microseconds with 3 significant digits (so within 0.1% of the exact order statistic).
 *
 * @param count values recorded
 * @param mean  exact mean
 * @param p50   median
 * @param p90   90th percentile
 * @param p99   99th percentile
 * @param min   smallest value
 * @param max   largest value
 */
public record LatencyStats(long count, double mean, double p50, double p90, double p99, double min, double max) {
    /** No values. */
    public static final LatencyStats EMPTY = new LatencyStats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
            Double.NaN, Double.NaN);

    /** Accumulates values given in nanoseconds. Not thread-safe. */
    public static final class Recorder {
        private final Histogram histogram = new Histogram(3);
        private double sumMs;
        private long count;
        private double min = Double.POSITIVE_INFINITY;
        private double max = Double.NEGATIVE_INFINITY;

        /** Records one value; negative and NaN values are ignored (a metric that does not apply). */
        public void recordNanos(double nanos) {
            if (!(nanos >= 0)) {
                return;
            }
            double ms = nanos / 1e6;
            histogram.recordValue(Math.round(nanos / 1e3));
            sumMs += ms;
            count++;
            min = Math.min(min, ms);
            max = Math.max(max, ms);
        }

        /** The summary so far. */
        public LatencyStats stats() {
            if (count == 0) {
                return EMPTY;
            }
            return new LatencyStats(count, sumMs / count, pct(50), pct(90), pct(99), min, max);
        }

        private double pct(double p) {
            // the histogram answers with the top of a bucket; keep it within the values seen
            return Math.min(max, Math.max(min, histogram.getValueAtPercentile(p) / 1e3));
        }
    }
}
