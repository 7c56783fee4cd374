package io.expertmesh.telemetry;

import io.opentelemetry.sdk.metrics.data.ExponentialHistogramPointData;
import java.util.List;

/**
 * An immutable base-2 exponential histogram of non-negative values (durations), as OpenTelemetry's
 * exponential histogram aggregation records them: at scale {@code s}, bucket {@code i} holds the values in
 * {@code (b^i, b^(i+1)]} with {@code b = 2^(2^-s)}, plus a count of zeros. Histograms of different scales merge
 * by downscaling the finer one (bucket {@code i} becomes {@code i >> d}); percentiles are read from the buckets
 * with a relative error of at most {@link #relativeError()}.
 */
public final class Base2Histogram {
    /** The SDK's defaults for its exponential histogram aggregation, used for merged histograms as well. */
    public static final int MAX_BUCKETS = 160;
    public static final int MAX_SCALE = 20;

    private static final Base2Histogram EMPTY = new Base2Histogram(MAX_SCALE, 0, 0, new long[0], 0,
            Double.NaN, Double.NaN);

    private final int scale;
    private final long zeroCount;
    private final long offset;
    private final long[] counts;
    private final double sum;
    private final double min;
    private final double max;
    private final long count;

    private Base2Histogram(int scale, long zeroCount, long offset, long[] counts, double sum, double min,
                           double max) {
        this.scale = scale;
        this.zeroCount = zeroCount;
        this.offset = offset;
        this.counts = counts;
        this.sum = sum;
        this.min = min;
        this.max = max;
        long n = zeroCount;
        for (long c : counts) {
            n += c;
        }
        this.count = n;
    }

    public static Base2Histogram empty() {
        return EMPTY;
    }

    /**
     * The histogram of one OpenTelemetry exponential histogram point. Negative values (none are expected of
     * durations) count as zero.
     */
    public static Base2Histogram of(ExponentialHistogramPointData p) {
        List<Long> c = p.getPositiveBuckets().getBucketCounts();
        long[] counts = new long[c.size()];
        for (int i = 0; i < counts.length; i++) {
            counts[i] = c.get(i);
        }
        return new Base2Histogram(p.getPositiveBuckets().getScale(),
                p.getZeroCount() + p.getNegativeBuckets().getTotalCount(), p.getPositiveBuckets().getOffset(),
                counts, p.getSum(), p.hasMin() ? Math.max(0, p.getMin()) : Double.NaN,
                p.hasMax() ? Math.max(0, p.getMax()) : Double.NaN);
    }

    public long count() {
        return count;
    }

    public double sum() {
        return sum;
    }

    public int scale() {
        return scale;
    }

    /**
     * The most a percentile read from this histogram is off, relative to the true value: a bucket
     * {@code (L, U]} is read as {@code 2LU/(L+U)}, at most {@code (b-1)/(b+1)} away from any value in it
     * ({@code b = U/L = 2^(2^-scale)}; about 2.2% at scale 3, 0.27% at scale 6).
     */
    public double relativeError() {
        double base = Math.pow(2, Math.scalb(1.0, -scale));
        return (base - 1) / (base + 1);
    }

    /**
     * The value at {@code percentile} (0-100): the smallest recorded value such that at least that share of the
     * values are at most it, read from its bucket; 0 when empty.
     */
    public double valueAtPercentile(double percentile) {
        if (!(percentile >= 0 && percentile <= 100)) {
            throw new IllegalArgumentException("percentile must be in [0, 100], got " + percentile);
        }
        if (count == 0) {
            return 0;
        }
        long rank = Math.min(count, Math.max(1, (long) Math.ceil(percentile / 100 * count)));
        if (rank <= zeroCount) {
            return 0;
        }
        long seen = zeroCount;
        for (int i = 0; i < counts.length; i++) {
            seen += counts[i];
            if (seen >= rank) {
                return clamp(estimate(offset + i));
            }
        }
        return clamp(estimate(offset + counts.length - 1));
    }

    private double estimate(long index) {
        double lower = Math.pow(2, Math.scalb((double) index, -scale));
        double upper = Math.pow(2, Math.scalb((double) (index + 1), -scale));
        return 2 * lower * upper / (lower + upper);
    }

    // The true value also lies within the recorded min and max: clamping only moves the estimate closer.
    private double clamp(double v) {
        if (!Double.isNaN(min) && v < min) {
            v = min;
        }
        if (!Double.isNaN(max) && v > max) {
            v = max;
        }
        return v;
    }

    /**
     * Both histograms' values together, at the finest scale at which both fit in {@code maxBuckets} buckets
     * (never finer than either's).
     */
    public Base2Histogram plus(Base2Histogram o, int maxBuckets) {
        if (maxBuckets < 1) {
            throw new IllegalArgumentException("maxBuckets must be >= 1, got " + maxBuckets);
        }
        if (o.count == 0) {
            return this;
        }
        if (count == 0) {
            return o;
        }
        int s = Math.min(counts.length == 0 ? o.scale : scale, o.counts.length == 0 ? scale : o.scale);
        long lo;
        long hi;
        while (true) {
            lo = Long.MAX_VALUE;
            hi = Long.MIN_VALUE;
            for (Base2Histogram h : new Base2Histogram[] {this, o}) {
                if (h.counts.length > 0) {
                    lo = Math.min(lo, h.offset >> (h.scale - s));
                    hi = Math.max(hi, (h.offset + h.counts.length - 1) >> (h.scale - s));
                }
            }
            if (lo > hi || hi - lo + 1 <= maxBuckets) {
                break;
            }
            s--;
        }
        long[] merged = new long[lo > hi ? 0 : (int) (hi - lo + 1)];
        for (Base2Histogram h : new Base2Histogram[] {this, o}) {
            for (int i = 0; i < h.counts.length; i++) {
                merged[(int) (((h.offset + i) >> (h.scale - s)) - lo)] += h.counts[i];
            }
        }
        return new Base2Histogram(s, zeroCount + o.zeroCount, lo > hi ? 0 : lo, merged, sum + o.sum,
                minOf(min, o.min), maxOf(max, o.max));
    }

    private static double minOf(double a, double b) {
        return Double.isNaN(a) ? b : Double.isNaN(b) ? a : Math.min(a, b);
    }

    private static double maxOf(double a, double b) {
        return Double.isNaN(a) ? b : Double.isNaN(b) ? a : Math.max(a, b);
    }

    @Override
    public String toString() {
        return "Base2Histogram[count=" + count + ", scale=" + scale + ", p50=" + valueAtPercentile(50) + ", p99="
                + valueAtPercentile(99) + "]";
    }
}
