package io.expertmesh.router.experts;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches the workers' {@code grpc.health.v1} status: at start-up waits for the listed workers, then every
 * health interval takes out a worker that stops answering SERVING and admits one that starts (after checking it
 * serves this model; it gets experts by a rebalance). Also runs the timed rebalance, when configured, and keeps
 * this router's view of a shared placement current (its report to the other routers too).
 */
final class HealthMonitor implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(HealthMonitor.class);
    /** How long one health check may take; a frozen worker is found after about the interval plus this. */
    static final Duration HEALTH_DEADLINE = Duration.ofSeconds(2);

    private final ExpertClusterConfig config;
    private final WorkerRegistry workers;
    private final PlanManager plans;
    private final ScheduledExecutorService background = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("expertmesh-expert-health").daemon().factory());
    private volatile boolean closed;

    HealthMonitor(ExpertClusterConfig config, WorkerRegistry workers, PlanManager plans) {
        this.config = config;
        this.workers = workers;
        this.plans = plans;
    }

    /**
     * Waits up to the start-up timeout for {@code listed} to be SERVING and checks each serves this model.
     * Workers that do not come up in time are marked out (they join when their health check passes); none at all
     * is an error.
     */
    void awaitStartup(List<String> listed) throws InterruptedException {
        long deadline = System.nanoTime() + config.startupTimeout().toNanos();
        List<String> pending = new ArrayList<>(listed);
        while (!pending.isEmpty() && System.nanoTime() < deadline) {
            for (var it = pending.iterator(); it.hasNext(); ) {
                WorkerClient c = workers.get(it.next());
                if (c.healthy(HEALTH_DEADLINE)) {
                    workers.checkServesModel(c, config.controlTimeout());
                    it.remove();
                }
            }
            if (!pending.isEmpty()) {
                Thread.sleep(200);
            }
        }
        if (pending.size() == listed.size()) {
            throw new IllegalStateException("no expert worker was SERVING within "
                    + config.startupTimeout().toSeconds() + " s: " + String.join(", ", pending));
        }
        for (String w : pending) {
            LOG.warn("Expert worker {} is not SERVING; starting without it (it joins when healthy)", w);
            workers.get(w).markDown("not serving at start-up");
        }
    }

    /** Starts the periodic health checks (and the timed rebalance, if configured). */
    void start() {
        long health = config.healthInterval().toMillis();
        background.scheduleWithFixedDelay(this::check, health, health, TimeUnit.MILLISECONDS);
        if (!config.rebalanceInterval().isZero()) {
            long every = config.rebalanceInterval().toMillis();
            background.scheduleAtFixedRate(this::timedRebalance, every, every, TimeUnit.MILLISECONDS);
        }
    }

    /** Checks every worker soon (a worker just registered). */
    void checkSoon() {
        background.execute(this::check);
    }

    private void check() {
        if (closed) {
            return;
        }
        List<String> joined = new ArrayList<>();
        for (String w : workers.all()) {
            WorkerClient c = workers.get(w);
            boolean ok = c.healthy(HEALTH_DEADLINE);
            if (closed) {
                return; // closing: the workers going away is expected
            }
            if (c.live() && !ok) {
                plans.workerDown(w, "health check failed");
            } else if (!c.live() && ok) {
                try {
                    workers.checkServesModel(c, config.controlTimeout());
                    c.markLive();
                    joined.add(w);
                    LOG.info("Expert worker {} is SERVING; it gets experts by a rebalance", w);
                } catch (RuntimeException e) {
                    LOG.warn("Expert worker {} cannot join: {}", w, e.getMessage());
                }
            }
        }
        if (!joined.isEmpty()) {
            try {
                plans.joined(joined); // a rebalance, unless another router placed copies on them already
            } catch (RuntimeException e) {
                LOG.warn("Rebalance after a join failed", e);
            }
        }
        plans.sync();
        plans.refreshServable();
    }

    private void timedRebalance() {
        try {
            plans.timedRebalance(config.rebalanceInterval());
        } catch (RuntimeException e) {
            LOG.warn("Rebalance failed", e);
        }
    }

    @Override
    public void close() {
        closed = true;
        background.shutdownNow();
    }
}
