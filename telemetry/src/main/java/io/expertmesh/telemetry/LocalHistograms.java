package io.expertmesh.telemetry;

import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.metrics.Aggregation;
import io.opentelemetry.sdk.metrics.InstrumentType;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.AggregationTemporality;
import io.opentelemetry.sdk.metrics.data.ExponentialHistogramPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.data.MetricDataType;
import io.opentelemetry.sdk.metrics.export.CollectionRegistration;
import io.opentelemetry.sdk.metrics.export.MetricReader;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import java.util.function.Predicate;

/**
 * The OpenTelemetry histograms a process records, read back in the process (for status APIs and decisions such
 * as hedging) from the same instruments it exports: an in-process {@link MetricReader} on the process's meter
 * provider, so each value is recorded once.
 *
 * <p>The reader asks for delta temporality and, for histograms, the base-2 exponential aggregation (at most
 * {@link Base2Histogram#MAX_BUCKETS} buckets): this reader's own choice, so exporters keep the instruments'
 * explicit buckets while percentiles read here stay within {@link Base2Histogram#relativeError()} (a few percent
 * at worst). Other instrument types are dropped for this reader. Each collection's deltas of the {@link #track
 * tracked} histograms are folded per series (metric name and attributes) into a lifetime histogram and into time
 * slots: {@link #recent} merges the slots of the last {@code slots × slotLength} (one minute by default), so a slow
 * start is forgotten once its slots age out. Values count in the slot of the collection that read them, so
 * collect often where recency matters.
 */
public final class LocalHistograms implements AutoCloseable {
    public static final Duration SLOT = Duration.ofSeconds(5);
    public static final int SLOTS = 12;

    private final Reader reader = new Reader();
    private final Set<String> tracked = ConcurrentHashMap.newKeySet();
    private final Map<String, Map<Attributes, Series>> series = new HashMap<>();
    private final LongSupplier nanoClock;
    private final long slotNanos;
    private final int slots;
    private volatile Meter meter;
    private SdkMeterProvider own;
    private long lastCollect;
    private boolean collected;

    /** Not yet on a meter provider: register {@link #reader()} on one and {@link #attach} its meter. */
    public LocalHistograms() {
        this(System::nanoTime, SLOT, SLOTS);
    }

    /** As {@link #LocalHistograms()}, with the clock and window given (tests). */
    public LocalHistograms(LongSupplier nanoClock, Duration slotLength, int slots) {
        if (slotLength.isNegative() || slotLength.isZero() || slots < 1) {
            throw new IllegalArgumentException("slot length must be > 0 and slots >= 1");
        }
        this.nanoClock = Objects.requireNonNull(nanoClock, "nanoClock");
        this.slotNanos = slotLength.toNanos();
        this.slots = slots;
    }

    /**
     * Histograms on a meter provider of their own, which exports nothing: for processes or components without
     * telemetry that still read their measurements back. Closed with {@link #close()}.
     */
    public static LocalHistograms standalone() {
        return standalone(new LocalHistograms());
    }

    /** {@code h} on a meter provider of its own (see {@link #standalone()}). */
    public static LocalHistograms standalone(LocalHistograms h) {
        h.own = SdkMeterProvider.builder().registerMetricReader(h.reader).build();
        h.attach(h.own.get(Telemetry.SCOPE));
        return h;
    }

    /** The reader to register on the meter provider whose instruments are to be read back. */
    public MetricReader reader() {
        return reader;
    }

    /** True once a meter provider took {@link #reader()}. */
    public boolean registered() {
        return reader.registration != null;
    }

    /** Sets the meter of the provider {@link #reader()} is registered on. */
    public void attach(Meter meter) {
        this.meter = Objects.requireNonNull(meter, "meter");
    }

    /** The meter whose histograms this reads back. */
    public Meter meter() {
        Meter m = meter;
        if (m == null) {
            throw new IllegalStateException("not attached to a meter provider");
        }
        return m;
    }

    /** Keeps the histograms named {@code names} (others are read and dropped). */
    public void track(String... names) {
        tracked.addAll(Set.of(names));
    }

    /** Reads what was recorded since the last collection. */
    public synchronized void collect() {
        CollectionRegistration r = reader.registration;
        long now = nanoClock.getAsLong();
        lastCollect = now;
        collected = true;
        if (r == null) {
            return;
        }
        long slot = Math.floorDiv(now, slotNanos);
        for (MetricData m : r.collectAllMetrics()) {
            if (m.getType() != MetricDataType.EXPONENTIAL_HISTOGRAM || !tracked.contains(m.getName())) {
                continue;
            }
            Map<Attributes, Series> byAttributes = series.computeIfAbsent(m.getName(), k -> new HashMap<>());
            for (ExponentialHistogramPointData p : m.getExponentialHistogramData().getPoints()) {
                if (p.getCount() > 0) {
                    byAttributes.computeIfAbsent(p.getAttributes(), k -> new Series()).add(slot,
                            Base2Histogram.of(p), slots);
                }
            }
        }
    }

    /** {@link #collect()} unless the last collection is more recent than {@code maxAge}. */
    public synchronized void collectIfOlderThan(Duration maxAge) {
        if (!collected || nanoClock.getAsLong() - lastCollect >= maxAge.toNanos()) {
            collect();
        }
    }

    /** Every value of {@code metric}'s series matching {@code which} collected so far, merged. */
    public synchronized Base2Histogram total(String metric, Predicate<Attributes> which) {
        Base2Histogram h = Base2Histogram.empty();
        for (Map.Entry<Attributes, Series> e : series.getOrDefault(metric, Map.of()).entrySet()) {
            if (which.test(e.getKey())) {
                h = h.plus(e.getValue().total, Base2Histogram.MAX_BUCKETS);
            }
        }
        return h;
    }

    /** As {@link #total}, over the values collected within the window only (empty when there were none). */
    public synchronized Base2Histogram recent(String metric, Predicate<Attributes> which) {
        long oldest = Math.floorDiv(nanoClock.getAsLong(), slotNanos) - slots + 1;
        Base2Histogram h = Base2Histogram.empty();
        for (Map.Entry<Attributes, Series> e : series.getOrDefault(metric, Map.of()).entrySet()) {
            if (which.test(e.getKey())) {
                for (Slot s : e.getValue().recent) {
                    if (s.index >= oldest) {
                        h = h.plus(s.values, Base2Histogram.MAX_BUCKETS);
                    }
                }
            }
        }
        return h;
    }

    /** Shuts down the meter provider of a {@link #standalone()} instance (an attached one is its owner's). */
    @Override
    public void close() {
        if (own != null) {
            own.close();
        }
    }

    private record Slot(long index, Base2Histogram values) {
    }

    /** One series: everything collected, and the recent slots, oldest first. */
    private static final class Series {
        Base2Histogram total = Base2Histogram.empty();
        final ArrayDeque<Slot> recent = new ArrayDeque<>();

        void add(long slot, Base2Histogram delta, int slots) {
            total = total.plus(delta, Base2Histogram.MAX_BUCKETS);
            Slot last = recent.peekLast();
            if (last != null && last.index == slot) {
                recent.pollLast();
                recent.addLast(new Slot(slot, last.values.plus(delta, Base2Histogram.MAX_BUCKETS)));
            } else {
                recent.addLast(new Slot(slot, delta));
            }
            while (recent.peekFirst().index <= slot - slots) {
                recent.pollFirst();
            }
        }
    }

    /** Delta temporality and exponential histograms for this reader alone; nothing else is aggregated for it. */
    private static final class Reader implements MetricReader {
        volatile CollectionRegistration registration;

        @Override
        public void register(CollectionRegistration registration) {
            this.registration = registration;
        }

        @Override
        public AggregationTemporality getAggregationTemporality(InstrumentType type) {
            return AggregationTemporality.DELTA;
        }

        @Override
        public Aggregation getDefaultAggregation(InstrumentType type) {
            return type == InstrumentType.HISTOGRAM
                    ? Aggregation.base2ExponentialBucketHistogram(Base2Histogram.MAX_BUCKETS, Base2Histogram.MAX_SCALE)
                    : Aggregation.drop();
        }

        @Override
        public CompletableResultCode forceFlush() {
            return CompletableResultCode.ofSuccess();
        }

        @Override
        public CompletableResultCode shutdown() {
            registration = null;
            return CompletableResultCode.ofSuccess();
        }
    }
}
