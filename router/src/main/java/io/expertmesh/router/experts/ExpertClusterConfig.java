package io.expertmesh.router.experts;

import java.time.Duration;
import java.util.List;

/**
 * How a router uses its expert workers.
 *
 * @param workers           worker addresses ({@code host:port}) known at start; more may register later
 * @param redundantExperts  extra replicas per MoE layer, placed on the hottest experts (EPLB-style)
 * @param wire              exact F32 per-expert outputs, or BF16 per-worker sums
 * @param dispatchTimeout   deadline of one RunExperts call
 * @param controlTimeout    deadline of a LoadExperts / UnloadExperts / status call
 * @param healthInterval    how often each worker's health is checked
 * @param startupTimeout    how long start-up waits for the listed workers to be SERVING
 * @param rebalanceInterval automatic rebalancing by observed load; zero: only on request or when a worker joins
 * @param microBatches      1, or 2 to overlap one micro-batch's compute with the other's expert dispatch
 * @param hedge             when a slow RunExperts call's pairs are re-sent to other replicas
 */
public record ExpertClusterConfig(List<String> workers, int redundantExperts, WireFormat wire,
                                  Duration dispatchTimeout, Duration controlTimeout, Duration healthInterval,
                                  Duration startupTimeout, Duration rebalanceInterval, int microBatches,
                                  Hedge hedge) {

    /**
     * Hedging of slow expert calls: a RunExperts call still unanswered after {@code p99Multiple} times its
     * worker's p99 over the last minute (at least {@code floor}, and only once the worker has answered
     * {@code minCalls} calls) is cancelled and its pairs re-sent to other live replicas of their experts,
     * without taking the worker out (its health check decides that). Pairs whose expert has no other replica keep
     * waiting.
     *
     * @param p99Multiple 0 turns hedging off
     */
    public record Hedge(double p99Multiple, Duration floor, int minCalls) {
        /** Re-send after 4× p99 and at least 250 ms, once 32 calls were seen. */
        public static final Hedge DEFAULT = new Hedge(4, Duration.ofMillis(250), 32);
        public static final Hedge OFF = new Hedge(0, Duration.ofMillis(250), 32);

        public Hedge {
            if (!(p99Multiple >= 0) || Double.isInfinite(p99Multiple)) {
                throw new IllegalArgumentException("hedge p99 multiple must be >= 0 and finite, got " + p99Multiple);
            }
            if (floor.isNegative() || minCalls < 1) {
                throw new IllegalArgumentException("hedge floor must be >= 0 and min calls >= 1");
            }
        }
    }

    /** As the canonical constructor, with {@link Hedge#DEFAULT}. */
    public ExpertClusterConfig(List<String> workers, int redundantExperts, WireFormat wire, Duration dispatchTimeout,
                               Duration controlTimeout, Duration healthInterval, Duration startupTimeout,
                               Duration rebalanceInterval, int microBatches) {
        this(workers, redundantExperts, wire, dispatchTimeout, controlTimeout, healthInterval, startupTimeout,
                rebalanceInterval, microBatches, Hedge.DEFAULT);
    }

    public ExpertClusterConfig {
        workers = List.copyOf(workers);
        if (workers.isEmpty()) {
            throw new IllegalArgumentException("at least one expert worker address is required");
        }
        for (String w : workers) {
            checkAddress(w);
        }
        if (workers.stream().distinct().count() != workers.size()) {
            throw new IllegalArgumentException("expert worker addresses repeat: " + workers);
        }
        if (redundantExperts < 0) {
            throw new IllegalArgumentException("redundant experts must be >= 0, got " + redundantExperts);
        }
        for (Duration d : List.of(dispatchTimeout, controlTimeout, healthInterval, startupTimeout)) {
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("expert worker timeouts and intervals must be > 0, got " + d);
            }
        }
        if (microBatches != 1 && microBatches != 2) {
            throw new IllegalArgumentException("micro-batches must be 1 or 2, got " + microBatches);
        }
        java.util.Objects.requireNonNull(hedge, "hedge");
        if (rebalanceInterval.isNegative()) {
            throw new IllegalArgumentException("rebalance interval must be >= 0, got " + rebalanceInterval);
        }
    }

    /** Fails unless {@code address} is host:port with a port in 1..65535. */
    public static void checkAddress(String address) {
        int colon = address.lastIndexOf(':');
        if (colon <= 0 || colon == address.length() - 1) {
            throw new IllegalArgumentException("expert worker address '" + address + "' is not host:port");
        }
        try {
            int port = Integer.parseInt(address.substring(colon + 1));
            if (port < 1 || port > 65535) {
                throw new NumberFormatException();
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("expert worker address '" + address + "' has no valid port");
        }
    }

    /**
     * Defaults: exact wire, 30 s dispatch deadline, 60 s control calls, health every second, 120 s to start, no
     * automatic rebalance, two micro-batches.
     */
    public static ExpertClusterConfig of(List<String> workers, int redundantExperts) {
        return new ExpertClusterConfig(workers, redundantExperts, WireFormat.EXACT, Duration.ofSeconds(30),
                Duration.ofSeconds(60), Duration.ofSeconds(1), Duration.ofSeconds(120), Duration.ZERO, 2);
    }

    public ExpertClusterConfig withWire(WireFormat w) {
        return new ExpertClusterConfig(workers, redundantExperts, w, dispatchTimeout, controlTimeout, healthInterval,
                startupTimeout, rebalanceInterval, microBatches, hedge);
    }

    public ExpertClusterConfig withMicroBatches(int n) {
        return new ExpertClusterConfig(workers, redundantExperts, wire, dispatchTimeout, controlTimeout,
                healthInterval, startupTimeout, rebalanceInterval, n, hedge);
    }

    public ExpertClusterConfig withHedge(Hedge h) {
        return new ExpertClusterConfig(workers, redundantExperts, wire, dispatchTimeout, controlTimeout,
                healthInterval, startupTimeout, rebalanceInterval, microBatches, h);
    }
}
