package io.expertmesh.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.data.MetricDataType;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class LocalHistogramsTest {
    static final String NAME = "expertmesh.test.duration";
    static final AttributeKey<String> WORKER = AttributeKey.stringKey("worker");

    /** The value at {@code percentile} of {@code sorted}, as {@link Base2Histogram} defines it. */
    static double exact(double[] sorted, double percentile) {
        long rank = Math.max(1, (long) Math.ceil(percentile / 100 * sorted.length));
        return sorted[(int) rank - 1];
    }

    static void assertWithin(double expected, Base2Histogram h, double percentile) {
        double got = h.valueAtPercentile(percentile);
        double bound = h.relativeError() * expected * (1 + 1e-9);
        assertTrue(Math.abs(got - expected) <= bound, "p" + percentile + ": " + got + " vs exact " + expected
                + ", allowed ±" + bound + " (" + h + ")");
    }

    @Test
    void percentilesOfKnownValues_areWithinTheStatedRelativeError() {
        // Latencies from 50 µs to 5 s in two collections of different ranges, so the lifetime histogram merges
        // two scales; every value at once and only part of the range give the same bound.
        SplittableRandom random = new SplittableRandom(7);
        double[] narrow = random.doubles(5_000).map(u -> 0.002 + 0.001 * u).toArray();
        double[] wide = random.doubles(20_000).map(u -> 5e-5 * Math.pow(1e5, u * u)).toArray();
        try (LocalHistograms local = LocalHistograms.standalone()) {
            local.track(NAME);
            DoubleHistogram h = local.meter().histogramBuilder(NAME).setUnit("s")
                    .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
            for (double v : narrow) {
                h.record(v);
            }
            local.collect();
            Base2Histogram first = local.total(NAME, a -> true);
            double[] sorted = narrow.clone();
            Arrays.sort(sorted);
            assertEquals(narrow.length, first.count());
            assertTrue(first.relativeError() < 0.01, "a narrow range gets fine buckets: " + first);
            for (double p : new double[] {1, 50, 90, 99, 99.9}) {
                assertWithin(exact(sorted, p), first, p);
            }
            assertEquals(sorted[sorted.length - 1], first.valueAtPercentile(100), 0, "p100 is the max");

            for (double v : wide) {
                h.record(v);
            }
            local.collect();
            Base2Histogram all = local.total(NAME, a -> true);
            double[] both = new double[narrow.length + wide.length];
            System.arraycopy(narrow, 0, both, 0, narrow.length);
            System.arraycopy(wide, 0, both, narrow.length, wide.length);
            Arrays.sort(both);
            assertEquals(both.length, all.count());
            assertTrue(all.relativeError() < 0.05, "a few percent over five decades: " + all);
            for (double p : new double[] {1, 25, 50, 75, 90, 99, 99.9}) {
                assertWithin(exact(both, p), all, p);
            }
            assertEquals(Arrays.stream(both).sum(), all.sum(), 1e-6);
        }
    }

    @Test
    void recent_forgetsSlotsOlderThanTheWindow_totalKeepsThem() {
        AtomicLong now = new AtomicLong(Duration.ofHours(1).toNanos());
        try (LocalHistograms local = LocalHistograms.standalone(new LocalHistograms(now::get, Duration.ofSeconds(5),
                12))) {
            local.track(NAME);
            DoubleHistogram h = local.meter().histogramBuilder(NAME).build();
            Attributes a = Attributes.of(WORKER, "a");
            Attributes b = Attributes.of(WORKER, "b");
            for (int i = 0; i < 100; i++) {
                h.record(2.0, a); // a slow start
                h.record(0.5, b);
            }
            local.collect();
            now.addAndGet(Duration.ofSeconds(30).toNanos());
            for (int i = 0; i < 100; i++) {
                h.record(0.010, a);
            }
            local.collect();
            assertEquals(200, local.recent(NAME, a::equals).count(), "both within the minute");
            assertEquals(2.0, local.recent(NAME, a::equals).valueAtPercentile(99), 2.0 * 0.05);

            now.addAndGet(Duration.ofSeconds(35).toNanos()); // the slow start is 65 s old, the fast calls 35 s
            Base2Histogram recent = local.recent(NAME, a::equals);
            assertEquals(100, recent.count(), "only the last minute: " + recent);
            assertEquals(0.010, recent.valueAtPercentile(99), 0.010 * recent.relativeError());
            assertEquals(200, local.total(NAME, a::equals).count(), "the lifetime keeps everything");
            assertEquals(300, local.total(NAME, x -> true).count(), "series merge");
            assertEquals(0, local.recent(NAME, b::equals).count(), "b had no calls in the last minute");

            now.addAndGet(Duration.ofMinutes(5).toNanos());
            assertEquals(0, local.recent(NAME, a::equals).count());
            assertEquals(0, local.recent(NAME, a::equals).valueAtPercentile(99), "empty reads as 0");
        }
    }

    @Test
    void collectIfOlderThan_readsAgainOnlyAfterMaxAge() {
        AtomicLong now = new AtomicLong();
        try (LocalHistograms local = LocalHistograms.standalone(new LocalHistograms(now::get, Duration.ofSeconds(5),
                12))) {
            local.track(NAME);
            DoubleHistogram h = local.meter().histogramBuilder(NAME).build();
            h.record(1);
            local.collectIfOlderThan(Duration.ofMillis(50));
            h.record(1);
            now.addAndGet(Duration.ofMillis(10).toNanos());
            local.collectIfOlderThan(Duration.ofMillis(50));
            assertEquals(1, local.total(NAME, x -> true).count(), "collected 10 ms ago: not read again");
            now.addAndGet(Duration.ofMillis(50).toNanos());
            local.collectIfOlderThan(Duration.ofMillis(50));
            assertEquals(2, local.total(NAME, x -> true).count());
        }
    }

    @Test
    void untrackedHistogramsAndOtherInstruments_areNotKept() {
        try (LocalHistograms local = LocalHistograms.standalone()) {
            local.track(NAME);
            local.meter().histogramBuilder("expertmesh.test.other").build().record(1);
            local.meter().counterBuilder(NAME).build().add(1); // same name, not a histogram
            local.collect();
            assertEquals(0, local.total("expertmesh.test.other", x -> true).count());
            assertEquals(0, local.total(NAME, x -> true).count());
        }
    }

    @Test
    void onTheSdk_exportersKeepExplicitBuckets_theLocalReaderGetsExponential() {
        InMemoryMetricReader exported = InMemoryMetricReader.create();
        try (Telemetry t = Telemetry.create(TelemetryConfig.withoutEndpoint("expertmesh-test"), null, exported)) {
            LocalHistograms local = t.histograms();
            assertTrue(local.registered());
            local.track(NAME);
            DoubleHistogram h = t.meter().histogramBuilder(NAME).setUnit("s")
                    .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
            h.record(0.003);
            h.record(0.004);
            MetricData m = exported.collectAllMetrics().stream().filter(x -> x.getName().equals(NAME)).findFirst()
                    .orElseThrow();
            assertEquals(MetricDataType.HISTOGRAM, m.getType());
            assertEquals(Buckets.RPC_SECONDS, m.getHistogramData().getPoints().iterator().next().getBoundaries());
            local.collect();
            assertEquals(2, local.total(NAME, x -> true).count(), "recorded once, read by both");
            assertEquals(0.004, local.total(NAME, x -> true).valueAtPercentile(99), 0.004 * 0.01);
            assertEquals(2, exported.collectAllMetrics().stream().filter(x -> x.getName().equals(NAME))
                    .findFirst().orElseThrow().getHistogramData().getPoints().iterator().next().getCount(),
                    "the exporter's cumulative count is not reset by the local delta reader");
        }
    }

    @Test
    void withoutAnSdk_histogramsStillReadBack() {
        try (Telemetry t = Telemetry.noop()) {
            LocalHistograms local = t.histograms();
            local.track(NAME);
            t.meter().histogramBuilder(NAME).build().record(1); // the no-op meter: nothing
            local.meter().histogramBuilder(NAME).build().record(0.25);
            local.collect();
            assertEquals(1, local.total(NAME, x -> true).count());
            assertEquals(0.25, local.total(NAME, x -> true).valueAtPercentile(50), 0.25 * 0.01);
        }
    }

    @Test
    void base2Histogram_emptyAndBadInput() {
        Base2Histogram e = Base2Histogram.empty();
        assertEquals(0, e.count());
        assertEquals(0, e.valueAtPercentile(99));
        assertThrows(IllegalArgumentException.class, () -> e.valueAtPercentile(101));
        assertThrows(IllegalArgumentException.class, () -> e.valueAtPercentile(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> e.plus(e, 0));
        assertFalse(e.relativeError() > 1e-5, "the finest scale: " + e.relativeError());
        assertThrows(IllegalArgumentException.class, () -> new LocalHistograms(System::nanoTime, Duration.ZERO, 1));
        assertThrows(IllegalStateException.class, () -> new LocalHistograms().meter());
    }

    @Test
    void zeros_countAsZero() {
        try (LocalHistograms local = LocalHistograms.standalone()) {
            local.track(NAME);
            DoubleHistogram h = local.meter().histogramBuilder(NAME).build();
            for (double v : List.of(0.0, 0.0, 0.0, 1.0)) {
                h.record(v);
            }
            local.collect();
            Base2Histogram t = local.total(NAME, x -> true);
            assertEquals(0, t.valueAtPercentile(75));
            assertEquals(1.0, t.valueAtPercentile(76), 1e-5);
        }
    }
}
