package io.expertmesh.router.experts;

import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The placement of the routed experts on the workers, and every change to it: the first plan, repairs when a
 * worker goes out (its experts move to their other replicas or are loaded on live workers), reloads when a worker
 * lost its experts, and rebalances by observed load.
 *
 * <p>The plan lives in a {@link PlacementStore}, this router's own or one shared by every router. A change runs
 * {@linkplain PlacementStore#exclusively exclusively}, starting from the store's current plan (so a worker death
 * that another router already handled changes nothing here): load new copies, publish the new plan (refused if it
 * was not made from the current one), wait until every router dispatches by it, then unload the copies only the
 * old plan used. No router's dispatch fails: a call that raced the switch is refused with FAILED_PRECONDITION and
 * re-sent under the new plan. Dispatches read the adopted plan without locking.
 */
final class PlanManager implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PlanManager.class);
    /** How often a change looks whether every router acknowledged its plan. */
    private static final long ACK_POLL_MILLIS = 10;

    private final ExpertClusterConfig config;
    private final WorkerRegistry workers;
    private final DispatchStats stats;
    private final PlacementPlanner planner;
    private final ExpertLoad load;
    private final PlacementStore store;
    private final int numLayers;
    private final int[] moeLayers;
    private final int numExperts;
    /** Serialises this router's changes before they contend for the store's lock. */
    private final Object planLock = new Object();
    private final AtomicLong rebalances = new AtomicLong();
    private final AtomicLong published = new AtomicLong();
    /** The plan this router dispatches by, with its load window; only ever moves to a higher epoch. */
    private final AtomicReference<Adopted> adopted;
    private volatile ExpertCluster.Rebalance lastRebalance;
    /** Told whether every routed expert has a live holder, whenever that changes (the router's health). */
    private volatile Consumer<Boolean> servableListener = b -> { };
    private boolean lastServable = true;

    /** A plan adopted: what dispatch reads, the load window it started, when its last rebalance was. */
    private record Adopted(ExpertPlacement plan, long window, long rebalancedAtMillis) {
    }

    /** What a change makes of the current plan; {@code rebalance} is set when it is one (a new load window). */
    private record Next(ExpertPlacement plan, ExpertCluster.Rebalance rebalance) {
    }

    PlanManager(ExpertClusterConfig config, WorkerRegistry workers, DispatchStats stats, int nGroup, int numLayers,
                int[] moeLayers, int numExperts, PlacementStore store) {
        this.config = config;
        this.workers = workers;
        this.stats = stats;
        this.planner = new PlacementPlanner(nGroup);
        this.numLayers = numLayers;
        this.moeLayers = moeLayers.clone();
        this.numExperts = numExperts;
        this.store = store;
        this.load = new ExpertLoad(numLayers, moeLayers, numExperts);
        this.adopted = new AtomicReference<>(new Adopted(ExpertPlacement.empty(numLayers, moeLayers, numExperts),
                0, 0));
        store.onPublished(this::adopt);
    }

    ExpertPlacement placement() {
        return adopted.get().plan();
    }

    ExpertLoad load() {
        return load;
    }

    long rebalances() {
        return rebalances.get();
    }

    /** Plans this router published (changes it made; other routers' changes are adopted, not counted). */
    long published() {
        return published.get();
    }

    boolean sharedPlacement() {
        return store.shared();
    }

    ExpertCluster.Rebalance lastRebalance() {
        return lastRebalance;
    }

    /**
     * Switches dispatch to {@code shared} if it is newer than the plan in force, then tells the store which epoch
     * this router dispatches by. Workers it names that this router has not met are added (another router
     * checked them).
     *
     * @throws IllegalStateException when the plan is for another model (other layers or experts)
     */
    void adopt(SharedPlan shared) {
        if (shared != null) {
            if (!shared.sameShape(placement())) {
                throw new IllegalStateException("the shared placement is for another model (" + shared.numExperts()
                        + " routed experts, " + shared.replicas().length + " layers); give routers of different "
                        + "models different --kv-namespace values");
            }
            for (String w : shared.workers()) {
                workers.addIfAbsent(w);
            }
            Adopted next = new Adopted(shared.placement(), shared.window(), shared.rebalancedAtMillis());
            Adopted before = adopted.getAndUpdate(a -> next.plan().epoch() > a.plan().epoch() ? next : a);
            if (next.plan().epoch() > before.plan().epoch()) {
                if (next.window() != before.window()) {
                    load.reset(); // a rebalance elsewhere: the next one sees the traffic since
                    stats.resetTokens();
                }
                LOG.debug("Dispatching by {}", next.plan());
            }
        }
        Adopted now = adopted.get();
        store.report(now.plan().epoch(), now.window(), load::snapshot);
        if (now.plan().epoch() > 0) {
            refreshServable(); // before the first plan nothing is servable, and nobody asked yet
        }
    }

    /** Catches up with the store (a missed event, a reconnect) and refreshes this router's report. */
    void sync() {
        try {
            SharedPlan current = store.current();
            adopt(current);
            if (current == null && placement().epoch() > 0) {
                // The store lost the plan (its members restarted): publish ours again before a router that
                // starts now places the experts from scratch.
                LOG.warn("The shared placement is gone from the store; publishing epoch {} again",
                        placement().epoch());
                tryChange("publish the placement again", base -> new Next(base, null));
            }
        } catch (RuntimeException e) {
            LOG.warn("Reading the shared placement failed: {}", e.toString());
        }
    }

    /**
     * Runs a change from the store's current plan: {@code next} loads what the new plan needs and returns it,
     * or null when there is nothing to do. Then the plan is published, every router's acknowledgement awaited,
     * and the copies the old plan alone used are unloaded. Returns the plan in force afterwards.
     */
    private ExpertPlacement change(Function<ExpertPlacement, Next> next) {
        synchronized (planLock) {
            Duration wait = config.controlTimeout().multipliedBy(2);
            return store.exclusively(wait, wait.multipliedBy(2), () -> {
                SharedPlan current = store.current();
                adopt(current);
                Adopted base = adopted.get();
                // Normally the store's epoch; 0 when the store lost its plan (every cache node restarted): this
                // router's plan, which the workers still hold, is then published again.
                long expected = current == null ? 0 : current.epoch();
                Next n = next.apply(base.plan());
                if (n == null || (n.plan() == base.plan() && current != null)) {
                    return base.plan(); // nothing to do, or nothing could be done (no live worker)
                }
                SharedPlan shared = SharedPlan.of(n.plan(), n.rebalance() == null ? base.window() : base.window() + 1,
                        n.rebalance() == null ? base.rebalancedAtMillis() : n.rebalance().atMillis());
                store.advance(expected, shared);
                published.incrementAndGet();
                adopt(shared);
                awaitAcknowledged(n.plan().epoch());
                unloadOld(base.plan(), n.plan());
                if (n.rebalance() != null) {
                    rebalances.incrementAndGet();
                    lastRebalance = n.rebalance();
                }
                return n.plan();
            });
        }
    }

    /** {@link #change}, logging instead of throwing when the store cannot be changed now; the call is retried. */
    private void tryChange(String what, Function<ExpertPlacement, Next> next) {
        try {
            change(next);
        } catch (RuntimeException e) {
            LOG.warn("Could not {}: {}", what, e.toString());
        }
    }

    /**
     * Waits until every live router dispatches by {@code epoch} or later, at most the control timeout: after that
     * a router that has not moved is taken for gone (its report expires soon), and its calls to an unloaded copy
     * are refused and re-sent under the new plan.
     */
    private void awaitAcknowledged(long epoch) {
        long deadline = System.nanoTime() + config.controlTimeout().toNanos();
        while (true) {
            List<String> behind = store.acknowledged().entrySet().stream().filter(e -> e.getValue() < epoch)
                    .map(Map.Entry::getKey).toList();
            if (behind.isEmpty()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                LOG.warn("Routers {} did not move to placement epoch {} within {} s; unloading old copies anyway",
                        behind, epoch, config.controlTimeout().toSeconds());
                return;
            }
            try {
                Thread.sleep(ACK_POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Unloads from live workers the copies {@code old} gave them and {@code next} does not. */
    private void unloadOld(ExpertPlacement old, ExpertPlacement next) {
        for (String w : workers.live()) {
            Map<Integer, int[]> drop = old.heldOnlyHere(w, next);
            try {
                workers.get(w).unload(drop, config.controlTimeout());
            } catch (RuntimeException e) {
                LOG.warn("Expert worker {} failed to unload old copies: {}", w, Status.fromThrowable(e));
            }
        }
    }

    /**
     * The first plan over the live workers, loaded; or, when another router placed the experts already, that
     * plan, repaired if some of its workers are not live here.
     */
    void placeInitial() {
        change(base -> base.replicaCount() == 0
                ? new Next(settle(planner.plan(base, workers.live(), null, config.redundantExperts()), base), null)
                : repair(base));
        refreshServable();
    }

    /** {@code base} without its workers that are not live, and its experts without a holder placed; null if none. */
    private Next repair(ExpertPlacement base) {
        ExpertPlacement p = base;
        for (String w : workers.all()) {
            if (!workers.isLive(w) && p.holds(w)) {
                p = p.without(w);
            }
        }
        if (p == base && base.unplaced().isEmpty()) {
            return null;
        }
        return new Next(settle(p, base), null);
    }

    /**
     * The current plan, repaired first if one of {@code pairs}' experts has no live replica in it (its workers
     * went down): those experts are loaded on live workers.
     */
    ExpertPlacement placementFor(int layer, int[] ids, int[] pairs) {
        ExpertPlacement p = placement();
        if (servable(p, layer, ids, pairs)) {
            return p;
        }
        try {
            change(this::repair);
        } catch (RuntimeException e) {
            LOG.warn("Could not repair the placement: {}", e.toString()); // the dispatch names what is missing
        }
        return placement();
    }

    private boolean servable(ExpertPlacement p, int layer, int[] ids, int[] pairs) {
        for (int pair : pairs) {
            if (!hasLiveHolder(p, layer, ids[pair])) {
                return false;
            }
        }
        return true;
    }

    private boolean hasLiveHolder(ExpertPlacement p, int layer, int expert) {
        for (String w : p.replicasUnsafe(layer, expert)) {
            if (workers.isLive(w)) {
                return true;
            }
        }
        return false;
    }

    /**
     * A RunExperts call of {@code layer} sent under plan {@code epoch} failed: decides whether the worker is
     * out (then its experts move), the plan changed under the call (retry), the worker lost its experts
     * ({@code expertsNotHeld}, from the error's ErrorInfo: reload them), or the call itself was wrong (thrown:
     * the step fails).
     */
    void onCallFailed(String worker, Status status, boolean expertsNotHeld, long epoch, int layer) {
        switch (status.getCode()) {
            case INVALID_ARGUMENT -> throw new IllegalStateException("expert worker " + worker + " rejected layer "
                    + layer + ": " + status.getDescription());
            case FAILED_PRECONDITION -> {
                String why = String.valueOf(status.getDescription());
                if (placement().epoch() != epoch) {
                    return; // a rebalance moved experts while the call was in flight: re-send under the new plan
                }
                if (expertsNotHeld) {
                    reloadWorker(worker, why, epoch);
                    return;
                }
                throw new IllegalStateException("expert worker " + worker + " refused layer " + layer + ": " + why);
            }
            default -> workerDown(worker, status.getCode() + ": " + status.getDescription());
        }
    }

    /**
     * The worker lost experts the plan gives it (it restarted): load them again, or take it out. Nothing to do
     * when the plan moved past the call's epoch (another router changed it; the call is re-sent under it).
     */
    private void reloadWorker(String worker, String why, long callEpoch) {
        tryChange("reload the experts of " + worker, base -> {
            if (base.epoch() != callEpoch) {
                return null;
            }
            WorkerClient c = workers.get(worker);
            LOG.warn("Expert worker {} lost experts ({}); loading them again", worker, why);
            try {
                c.load(base.heldOnlyHere(worker, ExpertPlacement.empty(numLayers, moeLayers, numExperts)),
                        config.controlTimeout());
                return null;
            } catch (RuntimeException e) {
                c.markDown("reloading experts failed: " + Status.fromThrowable(e));
                return new Next(settle(base.without(worker), base), null);
            }
        });
        refreshServable();
    }

    /**
     * Takes {@code worker} out here and, unless another router did already, out of the plan: its experts move to
     * their other replicas, or are loaded on live workers.
     */
    void workerDown(String worker, String why) {
        WorkerClient c = workers.get(worker);
        if (c == null) {
            return;
        }
        if (c.live()) {
            c.markDown(why);
            LOG.warn("Expert worker {} is out ({}); moving its experts", worker, why);
        } else if (!placement().holds(worker)) {
            return; // out here and in the plan already: every failed call of it lands here
        }
        try {
            change(base -> base.holds(worker) ? new Next(settle(base.without(worker), base), null) : null);
        } catch (RuntimeException e) {
            // out of this router's dispatch already: its calls go to replicas while the plan cannot change
            LOG.warn("Could not take expert worker {} out of the placement: {}", worker, e.toString());
        }
        refreshServable();
    }

    /**
     * Makes {@code next} servable and loaded, given that {@code current} is what workers hold: experts without a
     * replica go to live workers, new copies are loaded; a worker failing to load is taken out and the rest
     * retried. Returns the plan to publish (it may still have holes when no worker is live).
     */
    private ExpertPlacement settle(ExpertPlacement next, ExpertPlacement current) {
        while (true) {
            List<String> live = workers.live();
            if (live.isEmpty()) {
                LOG.error("No live expert worker: {} experts cannot be served", next.unplaced().size());
                return next;
            }
            ExpertPlacement filled = planner.reassignUnplaced(next, live, mergedLoad(adopted.get().window()));
            List<String> failed = loadNew(filled, current);
            if (failed.isEmpty()) {
                return filled;
            }
            next = filled;
            for (String f : failed) {
                next = next.without(f);
            }
        }
    }

    /** Loads on every live worker what {@code next} gives it beyond {@code current}, in parallel; who failed. */
    private List<String> loadNew(ExpertPlacement next, ExpertPlacement current) {
        List<String> failed = new CopyOnWriteArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (String w : workers.live()) {
            Map<Integer, int[]> add = next.heldOnlyHere(w, current);
            if (add.isEmpty()) {
                continue;
            }
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    workers.get(w).load(add, config.controlTimeout());
                } catch (RuntimeException e) {
                    workers.get(w).markDown("loading experts failed: " + Status.fromThrowable(e));
                    LOG.warn("Expert worker {} failed to load experts: {}", w, Status.fromThrowable(e));
                    failed.add(w);
                }
            }));
        }
        joinAll(threads);
        return failed;
    }

    private static void joinAll(List<Thread> threads) {
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Tokens routed per [layer][expert] since the last rebalance, by every router sharing the placement. */
    long[][] observedLoad() {
        return mergedLoad(adopted.get().window());
    }

    /** This router's load counts plus those other routers counted in the same window. */
    private long[][] mergedLoad(long window) {
        long[][] sum = load.snapshot();
        for (long[][] other : store.otherLoads(window)) {
            for (int l = 0; l < sum.length && l < other.length; l++) {
                if (sum[l] != null && other[l] != null) {
                    for (int e = 0; e < sum[l].length && e < other[l].length; e++) {
                        sum[l][e] += other[l][e];
                    }
                }
            }
        }
        return sum;
    }

    /**
     * Re-places the experts over the live workers by the load every router observed since the last rebalance
     * (hottest experts replicated, per-worker load evened out): new copies are loaded first, then the plan
     * switches, then copies no longer in the plan are dropped. Returns the plan now in force.
     */
    ExpertPlacement rebalance() {
        try {
            return change(this::rebalanceFrom);
        } finally {
            refreshServable();
        }
    }

    /** A rebalance, unless every worker in {@code joined} holds copies already (another router placed them). */
    void joined(List<String> joined) {
        try {
            change(base -> joined.stream().allMatch(base::holds) ? null : rebalanceFrom(base));
        } finally {
            refreshServable();
        }
    }

    /** The timed rebalance: skipped when any router rebalanced within most of {@code every}. */
    void timedRebalance(Duration every) {
        try {
            change(base -> System.currentTimeMillis() - adopted.get().rebalancedAtMillis() < every.toMillis() * 9 / 10
                    ? null : rebalanceFrom(base));
        } finally {
            refreshServable();
        }
    }

    private Next rebalanceFrom(ExpertPlacement old) {
        List<String> live = workers.live();
        if (live.isEmpty()) {
            return null;
        }
        long[][] observed = mergedLoad(adopted.get().window());
        ExpertPlacement next = planner.plan(old, live, observed, config.redundantExperts());
        List<String> failed = loadNew(next, old);
        if (!failed.isEmpty()) {
            ExpertPlacement p = old;
            for (String f : failed) {
                p = p.without(f);
            }
            return new Next(settle(p, old), null);
        }
        double before = meanImbalance(old, observed, live);
        double after = meanImbalance(next, observed, live);
        LOG.info("Rebalancing experts over {} workers: mean worker-load imbalance {} → {} (by observed load); {}",
                live.size(), String.format("%.3f", before), String.format("%.3f", after), next);
        return new Next(next, new ExpertCluster.Rebalance(System.currentTimeMillis(), before, after, next.epoch()));
    }

    /** Mean over MoE layers of max/mean per-worker load that {@code plan} gives {@code observed}. */
    static double meanImbalance(ExpertPlacement plan, long[][] observed, List<String> workers) {
        double sum = 0;
        int n = 0;
        for (int l : plan.moeLayers()) {
            sum += PlacementPlanner.imbalance(PlacementPlanner.workerLoads(plan, l, observed[l], workers));
            n++;
        }
        return n == 0 ? 0 : sum / n;
    }

    /** True when every routed expert of every MoE layer has a live holder. */
    boolean servable() {
        ExpertPlacement p = placement();
        for (int l : p.moeLayers()) {
            for (int e = 0; e < p.numExperts(); e++) {
                if (!hasLiveHolder(p, l, e)) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Calls {@code listener} with {@link #servable()} now and whenever it changes. */
    synchronized void onServableChange(Consumer<Boolean> listener) {
        servableListener = listener;
        lastServable = servable();
        listener.accept(lastServable);
    }

    /** Tells the listener if servability changed (after a plan change or a liveness change). */
    synchronized void refreshServable() {
        boolean now = servable();
        if (now != lastServable) {
            lastServable = now;
            if (now) {
                LOG.info("Every routed expert has a live holder again: SERVING");
            } else {
                LOG.error("Routed experts without a live holder: NOT_SERVING until a worker comes back ({})",
                        placement().unplaced());
            }
            servableListener.accept(now);
        }
    }

    @Override
    public void close() {
        store.close();
    }
}
