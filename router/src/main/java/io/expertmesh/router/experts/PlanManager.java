package io.expertmesh.router.experts;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The placement of the routed experts on the workers, and every change to it: the first plan, repairs when a
 * worker goes out (its experts move to their other replicas or are loaded on live workers), reloads when a worker
 * lost its experts, and rebalances by observed load (load new copies, switch, drop old copies: no dispatch fails).
 *
 * <p>Changes are serialised by one lock; dispatches read the volatile current plan without locking.
 */
final class PlanManager {
    private static final Logger LOG = LoggerFactory.getLogger(PlanManager.class);

    private final ExpertClusterConfig config;
    private final WorkerRegistry workers;
    private final DispatchStats stats;
    private final PlacementPlanner planner;
    private final ExpertLoad load;
    private final int numLayers;
    private final int numExperts;
    private final Object planLock = new Object();
    private final AtomicLong rebalances = new AtomicLong();
    private volatile ExpertPlacement placement;
    private volatile ExpertCluster.Rebalance lastRebalance;
    /** Told whether every routed expert has a live holder, whenever that changes (the router's health). */
    private volatile Consumer<Boolean> servableListener = b -> { };
    private boolean lastServable = true;

    PlanManager(ExpertClusterConfig config, WorkerRegistry workers, DispatchStats stats, int nGroup, int numLayers,
                int[] moeLayers, int numExperts) {
        this.config = config;
        this.workers = workers;
        this.stats = stats;
        this.planner = new PlacementPlanner(nGroup);
        this.numLayers = numLayers;
        this.numExperts = numExperts;
        this.load = new ExpertLoad(numLayers, moeLayers, numExperts);
        this.placement = ExpertPlacement.empty(numLayers, moeLayers, numExperts);
    }

    ExpertPlacement placement() {
        return placement;
    }

    ExpertLoad load() {
        return load;
    }

    long rebalances() {
        return rebalances.get();
    }

    ExpertCluster.Rebalance lastRebalance() {
        return lastRebalance;
    }

    /** The first plan over the live workers, loaded. */
    void placeInitial() {
        synchronized (planLock) {
            ExpertPlacement next = planner.plan(placement, workers.live(), null, config.redundantExperts());
            placement = settle(next, placement);
        }
        refreshServable();
    }

    /**
     * The current plan, repaired first if one of {@code pairs}' experts has no live replica in it (its workers
     * went down): those experts are loaded on live workers.
     */
    ExpertPlacement placementFor(int layer, int[] ids, int[] pairs) {
        ExpertPlacement p = placement;
        if (servable(p, layer, ids, pairs)) {
            return p;
        }
        synchronized (planLock) {
            p = placement;
            for (String w : workers.all()) {
                if (!workers.isLive(w)) {
                    p = p.without(w);
                }
            }
            placement = settle(p, placement);
            return placement;
        }
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
                if (placement.epoch() != epoch) {
                    return; // a rebalance moved experts while the call was in flight: re-send under the new plan
                }
                if (expertsNotHeld) {
                    reloadWorker(worker, why);
                    return;
                }
                throw new IllegalStateException("expert worker " + worker + " refused layer " + layer + ": " + why);
            }
            default -> workerDown(worker, status.getCode() + ": " + status.getDescription());
        }
    }

    /** The worker lost experts the plan gives it (it restarted): load them again, or take it out. */
    private void reloadWorker(String worker, String why) {
        synchronized (planLock) {
            WorkerClient c = workers.get(worker);
            LOG.warn("Expert worker {} lost experts ({}); loading them again", worker, why);
            try {
                c.load(placement.heldOnlyHere(worker, ExpertPlacement.empty(numLayers, placement.moeLayers(),
                        numExperts)), config.controlTimeout());
            } catch (RuntimeException e) {
                downLocked(c, "reloading experts failed: " + Status.fromThrowable(e));
            }
        }
    }

    /** Takes {@code worker} out: its experts move to their other replicas, or are loaded on live workers. */
    void workerDown(String worker, String why) {
        synchronized (planLock) {
            WorkerClient c = workers.get(worker);
            if (c != null && c.live()) {
                downLocked(c, why);
            }
        }
    }

    private void downLocked(WorkerClient c, String why) {
        c.markDown(why);
        LOG.warn("Expert worker {} is out ({}); moving its experts", c.address(), why);
        placement = settle(placement.without(c.address()), placement);
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
            ExpertPlacement filled = planner.reassignUnplaced(next, live, load.snapshot());
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

    /**
     * Re-places the experts over the live workers by the load observed since the last rebalance (hottest experts
     * replicated, per-worker load evened out): new copies are loaded first, then the plan switches, then copies
     * no longer in the plan are dropped. Returns the plan now in force.
     */
    ExpertPlacement rebalance() {
        try {
            synchronized (planLock) {
                return rebalanceLocked();
            }
        } finally {
            refreshServable();
        }
    }

    private ExpertPlacement rebalanceLocked() {
        List<String> live = workers.live();
        if (live.isEmpty()) {
            return placement;
        }
        long[][] observed = load.snapshot();
        ExpertPlacement old = placement;
        ExpertPlacement next = planner.plan(old, live, observed, config.redundantExperts());
        List<String> failed = loadNew(next, old);
        if (!failed.isEmpty()) {
            ExpertPlacement p = old;
            for (String f : failed) {
                p = p.without(f);
            }
            placement = settle(p, old);
            return placement;
        }
        double before = meanImbalance(old, observed, live);
        double after = meanImbalance(next, observed, live);
        placement = next;
        for (String w : live) {
            Map<Integer, int[]> drop = old.heldOnlyHere(w, next);
            try {
                workers.get(w).unload(drop, config.controlTimeout());
            } catch (RuntimeException e) {
                LOG.warn("Expert worker {} failed to unload old copies: {}", w, Status.fromThrowable(e));
            }
        }
        load.reset();
        stats.resetTokens();
        rebalances.incrementAndGet();
        lastRebalance = new ExpertCluster.Rebalance(System.currentTimeMillis(), before, after, next.epoch());
        LOG.info("Rebalanced experts over {} workers: mean worker-load imbalance {} → {} (by observed load); {}",
                live.size(), String.format("%.3f", before), String.format("%.3f", after), next);
        return next;
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
        ExpertPlacement p = placement;
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
                        placement.unplaced());
            }
            servableListener.accept(now);
        }
    }
}
