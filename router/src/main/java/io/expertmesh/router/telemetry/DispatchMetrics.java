package io.expertmesh.router.telemetry;

import io.expertmesh.router.experts.DispatchObserver;
import io.expertmesh.telemetry.Buckets;
import io.grpc.Status;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.Meter;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Expert dispatch metrics: each RunExperts call's latency and tokens by worker (and status), and each layer's
 * whole dispatch (all workers, retries included) by layer. Passes every event on to {@code next}.
 */
final class DispatchMetrics implements DispatchObserver {
    static final AttributeKey<String> WORKER = AttributeKey.stringKey("worker");
    static final AttributeKey<String> STATUS = AttributeKey.stringKey("status");
    static final AttributeKey<Long> LAYER = AttributeKey.longKey("layer");

    private final DispatchObserver next;
    private final DoubleHistogram rpcDuration;
    private final LongCounter rpcTokens;
    private final DoubleHistogram layerDuration;
    private final DoubleHistogram rpcQueue;
    private final DoubleHistogram rpcCompute;
    private final DoubleHistogram rpcOverhead;
    private final Map<String, Attributes> rpcAttributes = new ConcurrentHashMap<>();
    private final Map<Integer, Attributes> layerAttributes = new ConcurrentHashMap<>();

    DispatchMetrics(Meter meter, DispatchObserver next) {
        this.next = next;
        rpcDuration = meter.histogramBuilder("expertmesh.router.expert_rpc.duration").setUnit("s")
                .setDescription("RunExperts calls to expert workers, sent to answered, by worker and status")
                .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
        rpcTokens = meter.counterBuilder("expertmesh.router.expert_rpc.tokens").setUnit("{token}")
                .setDescription("Tokens sent to expert workers, by worker and status").build();
        layerDuration = meter.histogramBuilder("expertmesh.router.layer_dispatch.duration").setUnit("s")
                .setDescription("One MoE layer's expert dispatch: every worker, retries included, by layer")
                .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
        rpcQueue = part(meter, "queue", "waiting on the worker for its expert compute (the worker reports it)");
        rpcCompute = part(meter, "compute", "in the worker's experts (the worker reports it)");
        rpcOverhead = part(meter, "overhead",
                "the call's time at the router minus the worker's queueing and compute: serialization, transport, "
                        + "wake-ups");
    }

    private static DoubleHistogram part(Meter meter, String name, String what) {
        return meter.histogramBuilder("expertmesh.router.expert_rpc." + name).setUnit("s")
                .setDescription("Successful RunExperts calls, time " + what + ", by worker")
                .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
    }

    @Override
    public void onRpcTimes(int layer, String worker, long queueNanos, long computeNanos, long overheadNanos) {
        Attributes a = rpcAttributes.computeIfAbsent(worker + '\n' + Status.Code.OK,
                k -> Attributes.of(WORKER, worker, STATUS, Status.Code.OK.name()));
        rpcQueue.record(queueNanos / 1e9, a);
        rpcCompute.record(computeNanos / 1e9, a);
        rpcOverhead.record(overheadNanos / 1e9, a);
        next.onRpcTimes(layer, worker, queueNanos, computeNanos, overheadNanos);
    }

    @Override
    public void onRpc(int layer, String worker, int tokens, long nanos, Status status) {
        Attributes a = rpcAttributes.computeIfAbsent(worker + '\n' + status.getCode(),
                k -> Attributes.of(WORKER, worker, STATUS, status.getCode().name()));
        rpcDuration.record(nanos / 1e9, a);
        rpcTokens.add(tokens, a);
        next.onRpc(layer, worker, tokens, nanos, status);
    }

    @Override
    public void onLayer(int layer, int tokens, long nanos) {
        layerDuration.record(nanos / 1e9, layerAttributes.computeIfAbsent(layer,
                l -> Attributes.of(LAYER, (long) l)));
        next.onLayer(layer, tokens, nanos);
    }
}
