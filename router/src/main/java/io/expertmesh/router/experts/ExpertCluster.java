package io.expertmesh.router.experts;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.telemetry.Base2Histogram;
import io.expertmesh.telemetry.LocalHistograms;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A router's expert workers and the placement of the routed experts on them: what the rest of the router sees.
 * It starts the workers' experts and hands out {@link RemoteExperts} for the model's MoE layers, and keeps serving
 * through faults. The parts: {@link WorkerRegistry} (the workers and their clients), {@link HealthMonitor}
 * (start-up wait, health checks, joins), {@link PlanManager} (the placement and every change to it: repair,
 * reload, rebalance; kept in a {@link PlacementStore}, this router's own or shared by every router of a KV tier)
 * and {@link DispatchStats} (what was measured, for status and hedging); plus the compute lock a step's
 * two micro-batches share.
 */
public final class ExpertCluster implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertCluster.class);

    private final ModelConfig model;
    private final ExpertClusterConfig config;
    private final WorkerRegistry workers;
    private final DispatchStats stats;
    private final PlanManager plans;
    private final HealthMonitor health;
    private final ReentrantLock computeLock = new ReentrantLock();
    /** Histograms of the cluster's own, when it was given none (closed with it); else null. */
    private final LocalHistograms ownHistograms;

    /**
     * A cluster whose placement is this router's alone, measuring on a meter provider of its own that exports
     * nothing.
     */
    public ExpertCluster(ModelConfig model, ExpertClusterConfig config, WorkerChannels channels,
                         DispatchObserver observer) {
        this(model, config, channels, observer, PlacementStore.local());
    }

    /**
     * A cluster whose placement lives in {@code store}: shared with every router using the same store (it is
     * closed with the cluster); it measures on a meter provider of its own that exports nothing.
     */
    public ExpertCluster(ModelConfig model, ExpertClusterConfig config, WorkerChannels channels,
                         DispatchObserver observer, PlacementStore store) {
        this(model, config, channels, observer, null, store);
    }

    /**
     * A cluster whose dispatch latencies are recorded on {@code histograms}' meter (the process's OpenTelemetry,
     * so they are exported as well) and read back from it ({@code null}: a meter provider of its own, as above);
     * placement in {@code store} as above.
     */
    public ExpertCluster(ModelConfig model, ExpertClusterConfig config, WorkerChannels channels,
                         DispatchObserver observer, LocalHistograms histograms, PlacementStore store) {
        this.ownHistograms = histograms == null ? LocalHistograms.standalone() : null;
        this.model = model;
        this.config = config;
        int[] moe = IntStream.range(0, model.numLayers()).filter(model::isMoeLayer).toArray();
        this.workers = new WorkerRegistry(model, moe, channels);
        this.stats = new DispatchStats(model.numLayers(), observer,
                histograms == null ? ownHistograms : histograms);
        this.plans = new PlanManager(config, workers, stats, model.nGroup(), model.numLayers(), moe,
                model.numRoutedExperts(), store);
        this.health = new HealthMonitor(config, workers, plans);
    }

    public ExpertClusterConfig config() {
        return config;
    }

    public ExpertPlacement placement() {
        return plans.placement();
    }

    public ExpertLoad load() {
        return plans.load();
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
     * that they serve this model, places the experts and loads them, then watches the workers' health. Workers
     * that do not come up in time are left out (and join when their health check passes); none at all is an
     * error.
     */
    public void start() throws InterruptedException {
        for (String w : config.workers()) {
            workers.add(w);
        }
        health.awaitStartup(config.workers());
        plans.placeInitial();
        LOG.info("Experts placed on {} worker(s) with {} redundant per layer: {}", workers.live().size(),
                config.redundantExperts(), plans.placement());
        health.start();
    }

    /** Live workers in join order. */
    public List<String> liveWorkers() {
        return workers.live();
    }

    /**
     * True when every routed expert of every MoE layer has a live holder: the router can serve any request. A
     * router whose experts are not all held is not SERVING, although it still answers requests whose experts
     * are held.
     */
    public boolean servable() {
        return plans.servable();
    }

    /** Calls {@code listener} with {@link #servable()} now and whenever it changes. */
    public void onServableChange(Consumer<Boolean> listener) {
        plans.onServableChange(listener);
    }

    /** Expert calls given up on as slow and re-sent to replicas (hedged) so far. */
    public long hedges() {
        return stats.hedges();
    }

    /** Takes {@code worker} out: its experts move to their other replicas, or are loaded on live workers. */
    public void workerDown(String worker, String why) {
        plans.workerDown(worker, why);
    }

    /**
     * Re-places the experts over the live workers by the load observed since the last rebalance; see
     * {@link PlanManager#rebalance}. Returns the plan now in force.
     */
    public ExpertPlacement rebalance() {
        return plans.rebalance();
    }

    /**
     * Adds a worker at runtime (it registered, or was listed later): once it answers SERVING for this model it is
     * live and gets experts by a rebalance. A known address that was out is checked again.
     */
    public void register(String address) {
        ExpertClusterConfig.checkAddress(address);
        if (workers.addOut(address, "registered, not yet checked")) {
            LOG.info("Expert worker {} registered", address);
        }
        health.checkSoon();
    }

    // --- what RemoteExperts uses during a dispatch ---

    boolean isLive(String worker) {
        return workers.isLive(worker);
    }

    WorkerClient client(String worker) {
        return workers.get(worker);
    }

    int maxAttempts() {
        return workers.all().size() + 2;
    }

    ExpertPlacement placementFor(int layer, int[] ids, int[] pairs) {
        return plans.placementFor(layer, ids, pairs);
    }

    void onCallFailed(String worker, Status status, boolean expertsNotHeld, long epoch, int layer) {
        plans.onCallFailed(worker, status, expertsNotHeld, epoch, layer);
    }

    void onRpc(int layer, WorkerClient c, int tokens, long nanos, Status status) {
        stats.onRpc(layer, c, tokens, nanos, status);
    }

    void onLayerDone(int layer, int tokens, long nanos) {
        stats.onLayerDone(layer, tokens, nanos);
    }

    void onRpcTimes(int layer, WorkerClient c, long totalNanos, long queueMicros, long computeMicros) {
        stats.onRpcTimes(layer, c, totalNanos, queueMicros, computeMicros);
    }

    void onHedged(int layer, WorkerClient c, long nanos) {
        stats.onHedged(layer, c, nanos);
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

    /**
     * Workers that compute their experts with other kernels than this process would (a CPU without AVX512-BF16,
     * a GPU): the cluster's tokens then agree with a single process to float rounding, not bit for bit. Logged
     * as a warning when first seen.
     */
    public Set<String> workersWithOtherKernels() {
        return workers.withOtherKernels();
    }

    /** What the router knows of its workers and experts now. */
    public ClusterStatus status() {
        ExpertPlacement p = plans.placement();
        long[][] observed = plans.observedLoad();
        List<String> live = workers.live();
        List<ClusterStatus.Worker> ws = new ArrayList<>();
        Map<String, Map<Integer, int[]>> held = p.byWorker();
        stats.collect();
        for (String w : workers.all()) {
            ws.add(new ClusterStatus.Worker(stats.workerStats(workers.get(w)), held.getOrDefault(w, Map.of())));
        }
        List<ClusterStatus.Layer> layers = new ArrayList<>();
        for (int l : p.moeLayers()) {
            double[] perExpert = Arrays.stream(observed[l]).asDoubleStream().toArray();
            int layer = l;
            double[] perWorker = live.stream().mapToDouble(w -> stats.workerTokens(w, layer)).toArray();
            Base2Histogram h = stats.layerLatency(l);
            layers.add(new ClusterStatus.Layer(l, observed[l], PlacementPlanner.imbalance(perExpert),
                    PlacementPlanner.imbalance(perWorker), h.count(), h.valueAtPercentile(50) * 1000,
                    h.valueAtPercentile(99) * 1000));
        }
        return new ClusterStatus(p.epoch(), config.redundantExperts(), config.wire(), ws, layers,
                plans.rebalances(), plans.lastRebalance(), p.unplaced(), stats.breakdown(), stats.hedges());
    }

    /** True when the placement is shared with other routers. */
    public boolean sharedPlacement() {
        return plans.sharedPlacement();
    }

    /** Plans this router published: its changes to the placement (other routers' changes are only adopted). */
    public long placementChanges() {
        return plans.published();
    }

    /** The last rebalance: mean worker-load imbalance (max/mean) of the old and new plan on the same load. */
    public record Rebalance(long atMillis, double imbalanceBefore, double imbalanceAfter, long epoch) {
    }

    @Override
    public void close() {
        health.close();
        plans.close();
        workers.close();
        if (ownHistograms != null) {
            ownHistograms.close();
        }
    }
}
