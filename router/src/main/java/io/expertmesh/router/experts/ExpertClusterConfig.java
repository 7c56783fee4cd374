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
 */
public record ExpertClusterConfig(List<String> workers, int redundantExperts, WireFormat wire,
                                  Duration dispatchTimeout, Duration controlTimeout, Duration healthInterval,
                                  Duration startupTimeout, Duration rebalanceInterval, int microBatches) {

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
                startupTimeout, rebalanceInterval, microBatches);
    }

    public ExpertClusterConfig withMicroBatches(int n) {
        return new ExpertClusterConfig(workers, redundantExperts, wire, dispatchTimeout, controlTimeout,
                healthInterval, startupTimeout, rebalanceInterval, n);
    }
}
