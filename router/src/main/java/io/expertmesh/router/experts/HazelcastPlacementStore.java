package io.expertmesh.router.experts;

import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import com.hazelcast.map.listener.EntryAddedListener;
import com.hazelcast.map.listener.EntryUpdatedListener;
import io.expertmesh.kvcache.KvSecret;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The placement shared by every router of one Hazelcast cluster (the KV tier the routers already run, as
 * embedded members or clients of cache nodes).
 *
 * <ul>
 *   <li>IMap {@code expertmesh-placement-<namespace>}, key {@code plan}: the {@link SharedPlan}. It changes only
 *       through the {@link AdvancePlan} entry processor, a compare-and-set on the epoch run where the entry
 *       lives, so a change made from an old plan is refused whatever happened to the lock.</li>
 *   <li>The same key's map lock serialises changes: a router changes the plan (loads copies, publishes, waits for
 *       the acknowledgements, unloads) while the others wait. Hazelcast frees the lock of a member or client that
 *       leaves, and the lease frees it from a router that hangs.</li>
 *   <li>IMap {@code expertmesh-placement-<namespace>-routers}: one {@link RouterReport} per router (its epoch and
 *       load), written with a time-to-live and refreshed every health interval: the live routers are those with
 *       an entry.</li>
 * </ul>
 *
 * With the tier's {@link KvSecret} (a tier reachable from other hosts has one), plans are signed with
 * HMAC-SHA256 and a plan without a valid MAC is refused: anyone who can reach the Hazelcast port could otherwise
 * point every router at a worker of their own. Listeners run on a thread of this store, not on Hazelcast's event
 * threads (they call the store back).
 */
public final class HazelcastPlacementStore implements PlacementStore {
    private static final Logger LOG = LoggerFactory.getLogger(HazelcastPlacementStore.class);
    static final String PLAN_KEY = "plan";

    private final IMap<String, SharedPlan> plans;
    private final IMap<String, RouterReport> routers;
    private final String id;
    private final long ttlMillis;
    private final ExecutorService events = Executors.newSingleThreadExecutor(
            Thread.ofPlatform().name("expertmesh-placement-events").daemon().factory());
    private final List<UUID> listeners = new ArrayList<>();
    private final KvSecret secret;
    private static final byte[] MAC_LABEL = "expertmesh-placement-mac-v1\0".getBytes(StandardCharsets.US_ASCII);

    /**
     * @param namespace the KV tier's namespace: routers of one model share it
     * @param reportTtl how long a router that stops reporting still counts as live (see {@link #reportTtl})
     * @param secret    the tier's secret: plans are signed and checked with it; null: unsigned (a loopback tier)
     */
    public HazelcastPlacementStore(HazelcastInstance hz, String namespace, Duration reportTtl, KvSecret secret) {
        this.secret = secret;
        this.plans = hz.getMap(mapName(namespace));
        this.routers = hz.getMap(mapName(namespace) + "-routers");
        // its own id, not the member's: a router restarted on the same member is a new router to the others
        this.id = UUID.randomUUID().toString();
        this.ttlMillis = reportTtl.toMillis();
    }

    /** The map holding the plan of {@code namespace}. */
    public static String mapName(String namespace) {
        return "expertmesh-placement-" + namespace;
    }

    /** Five health intervals, at least 3 s: a router missing that many reports is taken for gone. */
    public static Duration reportTtl(Duration healthInterval) {
        Duration five = healthInterval.multipliedBy(5);
        return five.compareTo(Duration.ofSeconds(3)) < 0 ? Duration.ofSeconds(3) : five;
    }

    @Override
    public String routerId() {
        return id;
    }

    @Override
    public <T> T exclusively(Duration wait, Duration lease, Supplier<T> change) {
        boolean locked;
        try {
            locked = plans.tryLock(PLAN_KEY, wait.toMillis(), TimeUnit.MILLISECONDS, lease.toMillis(),
                    TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted waiting for the placement lock", e);
        }
        if (!locked) {
            throw new IllegalStateException("another router kept the placement lock for over " + wait.toSeconds()
                    + " s");
        }
        try {
            return change.get();
        } finally {
            try {
                plans.unlock(PLAN_KEY);
            } catch (IllegalMonitorStateException e) {
                // the lease ran out during the change: the epoch check kept the plan consistent anyway
                LOG.warn("The placement lock's lease ran out during a change ({} ms)", lease.toMillis());
            }
        }
    }

    @Override
    public SharedPlan current() {
        return checked(plans.get(PLAN_KEY));
    }

    /**
     * {@code p} if it carries the MAC the tier's secret calls for (or the tier has none).
     *
     * @throws IllegalStateException naming the two likely causes
     */
    private SharedPlan checked(SharedPlan p) {
        if (p == null || secret == null) {
            return p;
        }
        if (p.mac() == null || !MessageDigest.isEqual(p.mac(), secret.hmac(MAC_LABEL, p.covered()))) {
            throw new IllegalStateException("the shared placement (epoch " + p.epoch() + ") has " + (p.mac() == null
                    ? "no" : "a wrong") + " MAC: written without this tier's secret (a forgery, or a router with "
                    + "another or no --kv-secret-file); refused");
        }
        return p;
    }

    @Override
    public void advance(long expectedEpoch, SharedPlan next) {
        SharedPlan signed = secret == null ? next : next.withMac(secret.hmac(MAC_LABEL, next.covered()));
        String refused = plans.executeOnKey(PLAN_KEY, new AdvancePlan(expectedEpoch, signed));
        if (refused != null) {
            throw new StalePlanException(refused);
        }
    }

    @Override
    public void onPublished(Consumer<SharedPlan> listener) {
        Listener l = new Listener(listener);
        synchronized (listeners) {
            listeners.add(plans.addEntryListener(l, PLAN_KEY, true));
        }
    }

    private final class Listener implements EntryAddedListener<String, SharedPlan>,
            EntryUpdatedListener<String, SharedPlan> {
        private final Consumer<SharedPlan> target;

        Listener(Consumer<SharedPlan> target) {
            this.target = target;
        }

        @Override
        public void entryAdded(EntryEvent<String, SharedPlan> e) {
            deliver(e.getValue());
        }

        @Override
        public void entryUpdated(EntryEvent<String, SharedPlan> e) {
            deliver(e.getValue());
        }

        private void deliver(SharedPlan p) {
            try {
                events.execute(() -> {
                    try {
                        target.accept(checked(p));
                    } catch (RuntimeException ex) {
                        LOG.warn("Adopting the published placement {} failed: {}", p, ex.getMessage());
                    }
                });
            } catch (java.util.concurrent.RejectedExecutionException closed) {
                // closing: the plan no longer matters here
            }
        }
    }

    @Override
    public void report(long epoch, long window, Supplier<long[][]> load) {
        routers.set(id, new RouterReport(epoch, window, load.get()), ttlMillis, TimeUnit.MILLISECONDS);
    }

    @Override
    public Map<String, Long> acknowledged() {
        Map<String, Long> out = new LinkedHashMap<>();
        routers.forEach((k, v) -> out.put(k, v.epoch()));
        return out;
    }

    @Override
    public List<long[][]> otherLoads(long window) {
        List<long[][]> out = new ArrayList<>();
        routers.forEach((k, v) -> {
            if (!k.equals(id) && v.window() == window && v.load() != null) {
                out.add(v.load());
            }
        });
        return out;
    }

    @Override
    public boolean shared() {
        return true;
    }

    /** Stops listening and leaves the routers' list at once, so no change waits for this router's report. */
    @Override
    public void close() {
        events.shutdownNow();
        try {
            synchronized (listeners) {
                listeners.forEach(plans::removeEntryListener);
                listeners.clear();
            }
            routers.delete(id);
        } catch (RuntimeException e) {
            LOG.debug("Leaving the shared placement: {}", e.toString());
        }
    }
}
