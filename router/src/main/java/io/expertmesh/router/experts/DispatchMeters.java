package io.expertmesh.router.experts;

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
 * The OpenTelemetry instruments of expert dispatch: each RunExperts call's latency and tokens by worker (and
 * status), the worker-reported split of successful calls, and each layer's whole dispatch by layer. The only
 * record of these latencies: the router's status and hedging read them back ({@link DispatchStats}).
 */
final class DispatchMeters {
    static final String RPC_DURATION = "expertmesh.router.expert_rpc.duration";
    static final String LAYER_DURATION = "expertmesh.router.layer_dispatch.duration";
    static final String RPC_QUEUE = "expertmesh.router.expert_rpc.queue";
    static final String RPC_COMPUTE = "expertmesh.router.expert_rpc.compute";
    static final String RPC_OVERHEAD = "expertmesh.router.expert_rpc.overhead";
    static final AttributeKey<String> WORKER = AttributeKey.stringKey("worker");
    static final AttributeKey<String> STATUS = AttributeKey.stringKey("status");
    static final AttributeKey<Long> LAYER = AttributeKey.longKey("layer");

    private final DoubleHistogram rpcDuration;
    private final LongCounter rpcTokens;
    private final DoubleHistogram layerDuration;
    private final DoubleHistogram rpcQueue;
    private final DoubleHistogram rpcCompute;
    private final DoubleHistogram rpcOverhead;
    /** Per worker, the attributes of its calls by status code ordinal: built once, not per call. */
    private final Map<String, Attributes[]> rpcAttributes = new ConcurrentHashMap<>();
    private final Map<Integer, Attributes> layerAttributes = new ConcurrentHashMap<>();

    DispatchMeters(Meter meter) {
        rpcDuration = meter.histogramBuilder(RPC_DURATION).setUnit("s")
                .setDescription("RunExperts calls to expert workers, sent to answered, by worker and status")
                .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
        rpcTokens = meter.counterBuilder("expertmesh.router.expert_rpc.tokens").setUnit("{token}")
                .setDescription("Tokens sent to expert workers, by worker and status").build();
        layerDuration = meter.histogramBuilder(LAYER_DURATION).setUnit("s")
                .setDescription("One MoE layer's expert dispatch: every worker, retries included, by layer")
                .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
        rpcQueue = part(meter, RPC_QUEUE, "waiting on the worker for its expert compute (the worker reports it)");
        rpcCompute = part(meter, RPC_COMPUTE, "in the worker's experts (the worker reports it)");
        rpcOverhead = part(meter, RPC_OVERHEAD,
                "the call's time at the router minus the worker's queueing and compute: serialization, transport, "
                        + "wake-ups");
    }

    private static DoubleHistogram part(Meter meter, String name, String what) {
        return meter.histogramBuilder(name).setUnit("s")
                .setDescription("Successful RunExperts calls, time " + what + ", by worker")
                .setExplicitBucketBoundariesAdvice(Buckets.RPC_SECONDS).build();
    }

    /** The attributes of {@code worker}'s calls that ended with {@code code}. */
    Attributes rpc(String worker, Status.Code code) {
        Attributes[] byCode = rpcAttributes.computeIfAbsent(worker,
                w -> new Attributes[Status.Code.values().length]);
        Attributes a = byCode[code.ordinal()];
        if (a == null) {
            // A racing first call may build it twice: equal values, either one kept.
            a = Attributes.of(WORKER, worker, STATUS, code.name());
            byCode[code.ordinal()] = a;
        }
        return a;
    }

    Attributes layer(int layer) {
        return layerAttributes.computeIfAbsent(layer, l -> Attributes.of(LAYER, (long) l));
    }

    void rpc(String worker, int tokens, long nanos, Status status) {
        Attributes a = rpc(worker, status.getCode());
        rpcDuration.record(nanos / 1e9, a);
        rpcTokens.add(tokens, a);
    }

    void rpcTimes(String worker, long queueNanos, long computeNanos, long overheadNanos) {
        Attributes a = rpc(worker, Status.Code.OK);
        rpcQueue.record(queueNanos / 1e9, a);
        rpcCompute.record(computeNanos / 1e9, a);
        rpcOverhead.record(overheadNanos / 1e9, a);
    }

    void layer(int layer, long nanos) {
        layerDuration.record(nanos / 1e9, layer(layer));
    }
}
