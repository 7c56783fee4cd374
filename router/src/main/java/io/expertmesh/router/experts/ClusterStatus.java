package io.expertmesh.router.experts;

import java.util.List;
import java.util.Map;

/**
 * A snapshot of a router's expert cluster, for its status API.
 *
 * @param epoch         the placement's version
 * @param workers       every known worker, in join order
 * @param layers        per MoE layer: tokens per expert since the last rebalance and dispatch latency
 * @param unplaced      experts ("layer:expert") no live worker holds (requests needing them fail)
 * @param breakdown     where RunExperts time went (queueing, compute, overhead), since start
 * @param hedges        calls given up on as slow and re-sent to replicas, since start
 */
public record ClusterStatus(long epoch, int redundantExperts, WireFormat wire, List<Worker> workers,
                            List<Layer> layers, long rebalances, ExpertCluster.Rebalance lastRebalance,
                            List<String> unplaced, Breakdown breakdown, long hedges) {

    /**
     * p50/p99 in milliseconds of a successful RunExperts call's parts: the worker's queueing and compute, and the
     * overhead (the router-measured time minus both).
     */
    public record Breakdown(long calls, double queueP50Millis, double queueP99Millis, double computeP50Millis,
                            double computeP99Millis, double overheadP50Millis, double overheadP99Millis) {
    }

    /** One worker: what the router measured of it and the experts the plan gives it (layer → ids). */
    public record Worker(WorkerClient.Stats stats, Map<Integer, int[]> experts) {
    }

    /**
     * One MoE layer.
     *
     * @param expertTokens      tokens routed to each expert since the last rebalance (by every router sharing the
     *                          placement, as last reported)
     * @param expertImbalance   max/mean of expertTokens
     * @param workerImbalance   max/mean of tokens sent to each live worker for this layer
     * @param dispatches        dispatches measured
     * @param dispatchP50Millis whole-layer dispatch latency (all workers, retries included), median
     */
    public record Layer(int layer, long[] expertTokens, double expertImbalance, double workerImbalance,
                        long dispatches, double dispatchP50Millis, double dispatchP99Millis) {
    }
}
