package io.expertmesh.router.experts;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.proto.expert.v1.GetWorkerStatusResponse;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.IntStream;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A router's expert workers and the placement of the routed experts on them. It starts the workers' experts
 * (LoadExperts per the plan), hands out {@link RemoteExperts} for the model's MoE layers, and keeps serving
 * through faults: a worker that fails a call or its health check is taken out, experts left without a live
 * replica are loaded on live workers, and calls are retried there. A rebalance (on request, on a timer, or when
 * a worker joins) loads the new copies first, then switches the plan, then drops the old copies; a call that
 * raced the switch is retried under the new plan, so no request fails.
 *
 * <p>Plan changes are serialised by one lock; dispatches read the current plan without locking.
 */
public final class ExpertCluster implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertCluster.class);
    private static final Duration HEALTH_DEADLINE = Duration.ofSeconds(2);

    private final ModelConfig model;
    private final ExpertClusterConfig config;
    private final WorkerChannels channels;
    private final DispatchObserver observer;
    private final PlacementPlanner planner;
    private final ExpertLoad load;
    private final Map<String, WorkerClient> clients = new ConcurrentHashMap<>();
    /** Worker addresses in the order they joined. */
    private final List<String> order = new CopyOnWriteArrayList<>();
    private final Map<String, AtomicLongArray> workerTokens = new ConcurrentHashMap<>();
    private final Histogram[] layerMicros;
    private final Object planLock = new Object();
    private final ReentrantLock computeLock = new ReentrantLock();
    private final ScheduledExecutorService background;
    private final AtomicLong rebalances = new AtomicLong();
    private final AtomicLong hedges = new AtomicLong();
    /** Told whether every routed expert has a live holder, whenever that changes (the router's health). */
    private volatile java.util.function.Consumer<Boolean> servableListener = b -> { };
    private volatile boolean lastServable = true;
    private volatile ExpertPlacement placement;
    private volatile Rebalance lastRebalance;
    private volatile boolean closed;

    public ExpertCluster(ModelConfig model, ExpertClusterConfig config, WorkerChannels channels,
                         DispatchObserver observer) {
        this.model = model;
        this.config = config;
        this.channels = channels;
        this.observer = observer;
        this.planner = new PlacementPlanner(model.nGroup());
        int[] moe = IntStream.range(0, model.numLayers()).filter(model::isMoeLayer).toArray();
        this.load = new ExpertLoad(model.numLayers(), moe, model.numRoutedExperts());
        this.placement = ExpertPlacement.empty(model.numLayers(), moe, model.numRoutedExperts());
        this.layerMicros = new Histogram[model.numLayers()];
        for (int l : moe) {
            layerMicros[l] = new ConcurrentHistogram(3_600_000_000L, 2);
        }
        this.background = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("expertmesh-expert-cluster").daemon().factory());
    }

    public ExpertClusterConfig config() {
        return config;
    }

    public ExpertPlacement placement() {
        return placement;
    }

    public ExpertLoad load() {
        return load;
    }

    /** Where the model's routed experts run: on this cluster's workers. */
    public ModelBuilder.RoutedExpertsFactory routedExperts() {
        return layer -> new RemoteExperts(this, layer, model.hiddenSize());
    }

    /**
     * The lock a step's micro-batches take to compute; expert dispatches release it while they wait on workers,
     * so one micro-batch's attention runs while the other's experts are away.
     */
    public ReentrantLock computeLock() {
        return computeLock;
    }

    /**
     * Connects to the configured workers (waiting up to the start-up timeout for them to be SERVING), checks
     * that they serve this model, places the experts and loads them. Workers that do not come up in time are
     * left out (and join when their health check passes); none at all is an error.
     */
    public void start() throws InterruptedException {
        for (String w : config.workers()) {
            add(w);
        }
        long deadline = System.nanoTime() + config.startupTimeout().toNanos();
        List<String> pending = new ArrayList<>(config.workers());
        while (!pending.isEmpty() && System.nanoTime() < deadline) {
            for (var it = pending.iterator(); it.hasNext(); ) {
                WorkerClient c = clients.get(it.next());
                if (c.healthy(HEALTH_DEADLINE)) {
                    check(c);
                    it.remove();
                }
            }
            if (!pending.isEmpty()) {
                Thread.sleep(200);
            }
        }
        if (pending.size() == config.workers().size()) {
            throw new IllegalStateException("no expert worker was SERVING within "
                    + config.startupTimeout().toSeconds() + " s: " + String.join(", ", pending));
        }
        for (String w : pending) {
            LOG.warn("Expert worker {} is not SERVING; starting without it (it joins when healthy)", w);
            clients.get(w).markDown("not serving at start-up");
        }
        synchronized (planLock) {
            ExpertPlacement next = planner.plan(placement, liveWorkers(), null, config.redundantExperts());
            placement = settle(next, placement);
        }
        LOG.info("Experts placed on {} worker(s) with {} redundant per layer: {}", liveWorkers().size(),
                config.redundantExperts(), placement);
        long health = config.healthInterval().toMillis();
        background.scheduleWithFixedDelay(this::checkHealth, health, health, TimeUnit.MILLISECONDS);
        if (!config.rebalanceInterval().isZero()) {
            long every = config.rebalanceInterval().toMillis();
            background.scheduleAtFixedRate(this::rebalanceQuietly, every, every, TimeUnit.MILLISECONDS);
        }
    }

    private WorkerClient add(String address) {
        WorkerClient c = new WorkerClient(address, channels);
        clients.put(address, c);
        order.add(address);
        workerTokens.put(address, new AtomicLongArray(model.numLayers()));
        return c;
    }

    /** Fails unless the worker serves this model (same architecture, widths, experts and MoE layers). */
    private void check(WorkerClient c) {
        GetWorkerStatusResponse s = c.status(config.controlTimeout());
        int[] moe = placement.moeLayers();
        int[] theirs = s.getMoeLayersList().stream().mapToInt(Integer::intValue).toArray();
        List<String> wrong = new ArrayList<>();
        if (!s.getArchitecture().equals(model.architecture().hfName())) {
            wrong.add("architecture " + s.getArchitecture() + " vs " + model.architecture().hfName());
        }
        if (s.getHiddenSize() != model.hiddenSize()) {
            wrong.add("hidden size " + s.getHiddenSize() + " vs " + model.hiddenSize());
        }
        if (s.getNumRoutedExperts() != model.numRoutedExperts()) {
            wrong.add("routed experts " + s.getNumRoutedExperts() + " vs " + model.numRoutedExperts());
        }
        if (!Arrays.equals(moe, theirs)) {
            wrong.add("MoE layers " + Arrays.toString(theirs) + " vs " + Arrays.toString(moe));
        }
        if (!wrong.isEmpty()) {
            throw new IllegalStateException("expert worker " + c.address() + " serves another model ("
                    + s.getModel() + "): " + String.join("; ", wrong));
        }
    }

    /** Live workers in join order. */
    public List<String> liveWorkers() {
        return order.stream().filter(w -> clients.get(w).live()).toList();
    }

    boolean isLive(String worker) {
        WorkerClient c = clients.get(worker);
        return c != null && c.live();
    }

    WorkerClient client(String worker) {
        return clients.get(worker);
    }

    int maxAttempts() {
        return order.size() + 2;
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
            for (String w : order) {
                if (!clients.get(w).live()) {
                    p = p.without(w);
                }
            }
            placement = settle(p, placement);
            return placement;
        }
    }

    private boolean servable(ExpertPlacement p, int layer, int[] ids, int[] pairs) {
        for (int pair : pairs) {
            boolean any = false;
            for (String w : p.replicasUnsafe(layer, ids[pair])) {
                any |= isLive(w);
            }
            if (!any) {
                return false;
            }
        }
        return true;
    }

    /** Runs {@code wait} with the compute lock released if this thread holds it, then takes it back. */
    void whileWaiting(Runnable wait) {
        int holds = computeLock.isHeldByCurrentThread() ? computeLock.getHoldCount() : 0;
        for (int i = 0; i < holds; i++) {
            computeLock.unlock();
        }
        try {
            wait.run();
        } finally {
            for (int i = 0; i < holds; i++) {
                computeLock.lock();
            }
        }
    }

    void onRpc(int layer, WorkerClient c, int tokens, long nanos, Status status) {
        c.recordCall(nanos, tokens, status.isOk());
        if (status.isOk()) {
            workerTokens.get(c.address()).addAndGet(layer, tokens);
        }
        observer.onRpc(layer, c.address(), tokens, nanos, status);
    }

    void onHedged(int layer, WorkerClient c, long nanos) {
        hedges.incrementAndGet();
        LOG.debug("Layer {}: call to expert worker {} unanswered after {} ms; re-sending its pairs to replicas",
                layer, c.address(), nanos / 1_000_000);
    }

    /** Expert calls given up on as slow and re-sent to replicas (hedged) so far. */
    public long hedges() {
        return hedges.get();
    }

    /**
     * True when every routed expert of every MoE layer has a live holder: the router can serve any request. A
     * router whose experts are not all held is not SERVING, although it still answers requests whose experts
     * are held.
     */
    public boolean servable() {
        ExpertPlacement p = placement;
        for (int l : p.moeLayers()) {
            for (int e = 0; e < p.numExperts(); e++) {
                boolean any = false;
                for (String w : p.replicasUnsafe(l, e)) {
                    any |= isLive(w);
                }
                if (!any) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Calls {@code listener} with {@link #servable()} now and whenever it changes. */
    public synchronized void onServableChange(java.util.function.Consumer<Boolean> listener) {
        servableListener = listener;
        lastServable = servable();
        listener.accept(lastServable);
    }

    /** Tells the listener if servability changed (after a plan change or a liveness change). */
    private synchronized void refreshServable() {
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

    void onLayerDone(int layer, int tokens, long nanos) {
        layerMicros[layer].recordValue(Math.min(nanos / 1000, layerMicros[layer].getHighestTrackableValue()));
        observer.onLayer(layer, tokens, nanos);
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
            WorkerClient c = clients.get(worker);
            LOG.warn("Expert worker {} lost experts ({}); loading them again", worker, why);
            try {
                c.load(placement.heldOnlyHere(worker, ExpertPlacement.empty(model.numLayers(),
                        placement.moeLayers(), model.numRoutedExperts())), config.controlTimeout());
            } catch (RuntimeException e) {
                downLocked(c, "reloading experts failed: " + Status.fromThrowable(e));
            }
        }
    }

    /** Takes {@code worker} out: its experts move to their other replicas, or are loaded on live workers. */
    public void workerDown(String worker, String why) {
        synchronized (planLock) {
            WorkerClient c = clients.get(worker);
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
            List<String> live = liveWorkers();
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
        for (String w : liveWorkers()) {
            Map<Integer, int[]> add = next.heldOnlyHere(w, current);
            if (add.isEmpty()) {
                continue;
            }
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    clients.get(w).load(add, config.controlTimeout());
                } catch (RuntimeException e) {
                    clients.get(w).markDown("loading experts failed: " + Status.fromThrowable(e));
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
    public ExpertPlacement rebalance() {
        synchronized (planLock) {
            List<String> live = liveWorkers();
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
                    clients.get(w).unload(drop, config.controlTimeout());
                } catch (RuntimeException e) {
                    LOG.warn("Expert worker {} failed to unload old copies: {}", w, Status.fromThrowable(e));
                }
            }
            load.reset();
            workerTokens.values().forEach(a -> {
                for (int l = 0; l < a.length(); l++) {
                    a.set(l, 0);
                }
            });
            rebalances.incrementAndGet();
            lastRebalance = new Rebalance(System.currentTimeMillis(), before, after, next.epoch());
            LOG.info("Rebalanced experts over {} workers: mean worker-load imbalance {} → {} (by observed load); {}",
                    live.size(), String.format("%.3f", before), String.format("%.3f", after), next);
            return next;
        }
    }

    private void rebalanceQuietly() {
        try {
            rebalance();
        } catch (RuntimeException e) {
            LOG.warn("Rebalance failed", e);
        }
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

    /**
     * Adds a worker at runtime (it registered, or was listed later): once it answers SERVING for this model it is
     * live and gets experts by a rebalance. A known address that was out is checked again.
     */
    public void register(String address) {
        ExpertClusterConfig.checkAddress(address);
        WorkerClient c;
        synchronized (planLock) {
            c = clients.get(address);
            if (c == null) {
                c = add(address);
                c.markDown("registered, not yet checked");
                LOG.info("Expert worker {} registered", address);
            }
        }
        background.execute(this::checkHealth);
    }

    private void checkHealth() {
        if (closed) {
            return;
        }
        boolean joined = false;
        for (String w : order) {
            WorkerClient c = clients.get(w);
            boolean ok = c.healthy(HEALTH_DEADLINE);
            if (closed) {
                return; // closing: the workers going away is expected
            }
            if (c.live() && !ok) {
                workerDown(w, "health check failed");
            } else if (!c.live() && ok) {
                try {
                    check(c);
                    c.markLive();
                    joined = true;
                    LOG.info("Expert worker {} is SERVING; it gets experts by a rebalance", w);
                } catch (RuntimeException e) {
                    LOG.warn("Expert worker {} cannot join: {}", w, e.getMessage());
                }
            }
        }
        if (joined) {
            rebalanceQuietly();
        }
        refreshServable();
    }

    /** What the router knows of its workers and experts now. */
    public ClusterStatus status() {
        ExpertPlacement p = placement;
        long[][] observed = load.snapshot();
        List<String> live = liveWorkers();
        List<ClusterStatus.Worker> workers = new ArrayList<>();
        Map<String, Map<Integer, int[]>> held = p.byWorker();
        for (String w : order) {
            workers.add(new ClusterStatus.Worker(clients.get(w).stats(), held.getOrDefault(w, Map.of())));
        }
        List<ClusterStatus.Layer> layers = new ArrayList<>();
        for (int l : p.moeLayers()) {
            double[] perExpert = Arrays.stream(observed[l]).asDoubleStream().toArray();
            double[] perWorker = live.stream().mapToDouble(w -> workerTokens.get(w).get(l)).toArray();
            Histogram h = layerMicros[l].copy();
            layers.add(new ClusterStatus.Layer(l, observed[l], PlacementPlanner.imbalance(perExpert),
                    PlacementPlanner.imbalance(perWorker), h.getTotalCount(),
                    h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(50) / 1000.0,
                    h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(99) / 1000.0));
        }
        return new ClusterStatus(p.epoch(), config.redundantExperts(), config.wire(), workers, layers,
                rebalances.get(), lastRebalance, p.unplaced());
    }

    /** The last rebalance: mean worker-load imbalance (max/mean) of the old and new plan on the same load. */
    public record Rebalance(long atMillis, double imbalanceBefore, double imbalanceAfter, long epoch) {
    }

    @Override
    public void close() {
        closed = true;
        background.shutdownNow();
        for (WorkerClient c : clients.values()) {
            c.close();
        }
    }
}
