package io.expertmesh.kvcache;

import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link KvBlockStore} on a Hazelcast IMap {@code expertmesh-kv-<namespace>} of {@link BlockKey} →
 * {@link KvBlock}, both compact-serialized (see {@link KvSerializers}).
 *
 * <p><b>Lookups</b> walk the prefix in batches of {@code lookupBatch} keys: the batch's reads go out at once
 * ({@code getAsync} per key, so the member-side work runs in parallel and one deadline bounds the whole
 * lookup), then the results are taken in order until the first miss. Each hit must carry its key, pass
 * {@link KvBlock#verify()}, carry a valid MAC when the store has a {@link KvSecret} ({@link BlockAuthenticator})
 * and, when given, have the expected token ids. Any failure — timeout, a member
 * leaving, a client offline, a block that does not deserialise — ends the walk with the hits so far.
 *
 * <p><b>Publishing</b> offers to a bounded queue; one daemon thread stores blocks with {@code IMap.set}
 * (no old value comes back), signing each first when the store has a secret. Blocks are content-addressed, so
 * storing one twice is harmless.
 */
public final class HazelcastKvBlockStore implements KvBlockStore {
    private static final Logger log = LoggerFactory.getLogger(HazelcastKvBlockStore.class);
    private static final long CLOSE_GRACE_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final long WARN_EVERY_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final HazelcastInstance hz;
    private final boolean ownsInstance;
    private final String mapName;
    private volatile IMap<BlockKey, KvBlock> map;
    private final long lookupTimeoutNanos;
    private final int lookupBatch;
    private final ArrayBlockingQueue<KvBlock> queue;
    private final Thread publisher;
    private final StatsRecorder stats = new StatsRecorder();
    private final BlockAuthenticator authenticator;
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile long closeDeadline;
    private long lastPublishWarn = System.nanoTime() - WARN_EVERY_NANOS;
    private volatile long lastLookupWarn = System.nanoTime() - WARN_EVERY_NANOS;
    private volatile long lastForgeryWarn = System.nanoTime() - WARN_EVERY_NANOS;

    /**
     * A store on {@code hz}'s map for {@code cfg.namespace()}; the instance (member or client) must have been
     * configured by {@link HazelcastConfigs} (compact serializers, map config).
     *
     * @param ownsInstance whether {@link #close()} shuts {@code hz} down
     */
    public HazelcastKvBlockStore(HazelcastInstance hz, KvStoreConfig cfg, boolean ownsInstance) {
        this.hz = Objects.requireNonNull(hz, "hz");
        this.ownsInstance = ownsInstance;
        this.mapName = cfg.mapName();
        this.lookupTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(cfg.lookupTimeoutMillis());
        this.lookupBatch = cfg.lookupBatch();
        this.authenticator = cfg.secret() == null ? null : new BlockAuthenticator(cfg.secret());
        this.queue = new ArrayBlockingQueue<>(cfg.publishQueueCapacity());
        this.publisher = Thread.ofPlatform().daemon().name("kv-publish-" + cfg.namespace()).unstarted(this::drain);
        this.publisher.start();
    }

    /**
     * The member or client this store talks through: a router shares it for other cluster-wide state (the expert
     * placement) instead of joining the cluster twice.
     */
    public HazelcastInstance hazelcast() {
        return hz;
    }

    @Override
    public List<KvBlock> getPrefix(List<BlockKey> keys, List<int[]> expectedTokens) {
        Objects.requireNonNull(keys, "keys");
        if (expectedTokens != null && expectedTokens.size() != keys.size()) {
            throw new IllegalArgumentException("expectedTokens has " + expectedTokens.size() + " entries for "
                    + keys.size() + " keys");
        }
        stats.lookup(keys.size());
        List<KvBlock> hits = new ArrayList<>();
        if (closed.get() || keys.isEmpty()) {
            return hits;
        }
        long deadline = System.nanoTime() + lookupTimeoutNanos;
        try {
            walk:
            for (int start = 0; start < keys.size(); start += lookupBatch) {
                int end = Math.min(keys.size(), start + lookupBatch);
                List<CompletableFuture<KvBlock>> reads = new ArrayList<>(end - start);
                for (int i = start; i < end; i++) {
                    long t0 = System.nanoTime();
                    reads.add(map().getAsync(keys.get(i)).toCompletableFuture()
                            .whenComplete((b, e) -> stats.got(System.nanoTime() - t0)));
                }
                for (int i = start; i < end; i++) {
                    KvBlock b = reads.get(i - start).get(Math.max(0, deadline - System.nanoTime()),
                            TimeUnit.NANOSECONDS);
                    if (b == null || !accept(b, keys.get(i), expectedTokens == null ? null : expectedTokens.get(i))) {
                        break walk;
                    }
                    hits.add(b);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            lookupFailed(e);
        } catch (TimeoutException | ExecutionException | RuntimeException e) {
            lookupFailed(e);
        }
        if (!hits.isEmpty()) {
            stats.hits.increment();
            stats.hitBlocks.add(hits.size());
            for (KvBlock b : hits) {
                stats.hitTokens.add(b.blockSize());
            }
        }
        return hits;
    }

    private boolean accept(KvBlock b, BlockKey key, int[] expected) {
        stats.bytesIn.add(b.payloadBytes());
        if (!b.key().equals(key) || !b.verify()) {
            stats.corruptBlocks.increment();
            log.warn("KV block {} in map {} fails its checksum or names another key; treating it as a miss",
                    key, mapName);
            return false;
        }
        if (authenticator != null && !authenticator.verify(b)) {
            stats.unauthenticatedBlocks.increment();
            long now = System.nanoTime();
            // Warn at most every 10 s: a forger (or a router with another secret) could otherwise flood the log.
            if (now - lastForgeryWarn >= WARN_EVERY_NANOS) {
                lastForgeryWarn = now;
                log.warn("KV block {} in map {} has {} MAC: written without this tier's secret (a forgery, or a "
                        + "router with another or no --kv-secret-file); treating it as a miss ({} so far)", key,
                        mapName, b.mac() == null ? "no" : "a wrong", stats.unauthenticatedBlocks.sum());
            }
            return false;
        }
        if (expected != null && !Arrays.equals(expected, b.tokenIds())) {
            stats.mismatchedBlocks.increment();
            log.debug("KV block {} holds other tokens than expected (hash collision?); treating it as a miss", key);
            return false;
        }
        return true;
    }

    private void lookupFailed(Exception e) {
        stats.lookupErrors.increment();
        long now = System.nanoTime();
        if (now - lastLookupWarn >= WARN_EVERY_NANOS) {
            lastLookupWarn = now;
            log.warn("KV lookup in map {} failed, continuing with the hits so far: {}", mapName, e.toString());
        } else {
            log.debug("KV lookup in map {} failed", mapName, e);
        }
    }

    @Override
    public boolean publish(KvBlock block) {
        Objects.requireNonNull(block, "block");
        if (closed.get() || !queue.offer(block)) {
            stats.publishDrops.increment();
            return false;
        }
        stats.publishes.increment();
        return true;
    }

    private void drain() {
        while (true) {
            KvBlock b;
            try {
                b = queue.poll(50, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            }
            if (closed.get() && (b == null || System.nanoTime() > closeDeadline)) {
                return;
            }
            if (b != null) {
                store(b);
            }
        }
    }

    private void store(KvBlock b) {
        KvBlock stored = authenticator == null ? b : authenticator.signed(b); // off the clock: put latency is I/O
        long t0 = System.nanoTime();
        try {
            map().set(b.key(), stored);
            stats.put(System.nanoTime() - t0);
            stats.published.increment();
            stats.bytesOut.add(b.payloadBytes());
        } catch (RuntimeException e) {
            stats.publishErrors.increment();
            long now = System.nanoTime();
            if (now - lastPublishWarn >= WARN_EVERY_NANOS) {
                lastPublishWarn = now;
                log.warn("KV publish to map {} failed (block dropped): {}", mapName, e.toString());
            }
        }
    }

    @Override
    public KvStoreStats stats() {
        return stats.snapshot(queue.size());
    }

    /** Entries in the map, cluster-wide (for tests and diagnostics; a cluster call). */
    int size() {
        return map().size();
    }

    /**
     * The map's proxy, made on first use: a client started without a reachable cluster cannot make it yet,
     * and throws (which callers count as a failed lookup or publish) until it connects.
     */
    IMap<BlockKey, KvBlock> map() {
        IMap<BlockKey, KvBlock> m = map;
        if (m == null) {
            m = hz.getMap(mapName);
            map = m;
        }
        return m;
    }

    HazelcastInstance instance() {
        return hz;
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        closeDeadline = System.nanoTime() + CLOSE_GRACE_NANOS;
        try {
            publisher.join(TimeUnit.NANOSECONDS.toMillis(CLOSE_GRACE_NANOS) + 1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (publisher.isAlive()) {
            publisher.interrupt();
        }
        int left = queue.size();
        queue.clear();
        if (left > 0) {
            log.info("KV store closed with {} blocks not yet published", left);
        }
        if (ownsInstance) {
            hz.shutdown();
        }
    }
}
