package io.expertmesh.kvcache;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/** The mutable counters behind {@link KvStoreStats}; lock-free, safe from any thread. */
final class StatsRecorder {
    final LongAdder lookups = new LongAdder();
    final LongAdder lookupBlocks = new LongAdder();
    final LongAdder hits = new LongAdder();
    final LongAdder hitBlocks = new LongAdder();
    final LongAdder hitTokens = new LongAdder();
    final LongAdder corruptBlocks = new LongAdder();
    final LongAdder mismatchedBlocks = new LongAdder();
    final LongAdder unauthenticatedBlocks = new LongAdder();
    final LongAdder lookupErrors = new LongAdder();
    final LongAdder bytesIn = new LongAdder();
    final LongAdder bytesOut = new LongAdder();
    final LongAdder publishes = new LongAdder();
    final LongAdder published = new LongAdder();
    final LongAdder publishDrops = new LongAdder();
    final LongAdder publishErrors = new LongAdder();
    private final Latency get = new Latency();
    private final Latency put = new Latency();

    void lookup(int keys) {
        lookups.increment();
        lookupBlocks.add(keys);
    }

    void got(long nanos) {
        get.record(nanos);
    }

    void put(long nanos) {
        put.record(nanos);
    }

    KvStoreStats snapshot(int queueDepth) {
        return new KvStoreStats(lookups.sum(), lookupBlocks.sum(), hits.sum(), hitBlocks.sum(), hitTokens.sum(),
                corruptBlocks.sum(), mismatchedBlocks.sum(), lookupErrors.sum(), bytesIn.sum(), bytesOut.sum(),
                publishes.sum(), published.sum(), publishDrops.sum(), publishErrors.sum(), queueDepth,
                get.meanMicros(), get.maxMicros(), put.meanMicros(), put.maxMicros(), unauthenticatedBlocks.sum());
    }

    private static final class Latency {
        private final LongAdder count = new LongAdder();
        private final LongAdder totalNanos = new LongAdder();
        private final AtomicLong maxNanos = new AtomicLong();

        void record(long nanos) {
            count.increment();
            totalNanos.add(nanos);
            maxNanos.accumulateAndGet(nanos, Math::max);
        }

        double meanMicros() {
            long n = count.sum();
            return n == 0 ? 0 : totalNanos.sum() / 1e3 / n;
        }

        long maxMicros() {
            return maxNanos.get() / 1000;
        }
    }
}
