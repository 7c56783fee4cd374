package io.expertmesh.router.experts;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.GetWorkerStatusRequest;
import io.expertmesh.proto.expert.v1.GetWorkerStatusResponse;
import io.expertmesh.proto.expert.v1.LayerExperts;
import io.expertmesh.proto.expert.v1.LoadExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.expertmesh.proto.expert.v1.UnloadExpertsRequest;
import io.expertmesh.proto.wire.RunExpertsWire;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.ClientCalls;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The router's connection to one expert worker: its channel, its liveness as the router sees it, and what the
 * router counted of it (calls, tokens sent, failures) and the RunExperts p99 its hedging goes by (set by
 * {@link DispatchStats}, which keeps the latencies).
 */
public final class WorkerClient implements AutoCloseable {
    private final String address;
    private final ManagedChannel channel;
    private final ExpertServiceGrpc.ExpertServiceFutureStub async;
    private final ExpertServiceGrpc.ExpertServiceBlockingStub blocking;
    private final HealthGrpc.HealthBlockingStub health;
    private final AtomicLong tokens = new AtomicLong();
    private final AtomicLong calls = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicLong okCalls = new AtomicLong();
    /** The recent RunExperts p99 as of the last refresh; -1 before the first answer. */
    private volatile long p99Nanos = -1;
    /** RunExperts calls not yet answered: cancelled when the worker is taken out, so their pairs move at once. */
    private final Set<ListenableFuture<RunExpertsResponse>> inFlight = ConcurrentHashMap.newKeySet();
    private volatile boolean live = true;
    private volatile String lastError = "";

    WorkerClient(String address, WorkerChannels channels) {
        this.address = address;
        this.channel = channels.open(address);
        this.async = ExpertServiceGrpc.newFutureStub(channel);
        this.blocking = ExpertServiceGrpc.newBlockingStub(channel);
        this.health = HealthGrpc.newBlockingStub(channel);
    }

    public String address() {
        return address;
    }

    public boolean live() {
        return live;
    }

    /**
     * Takes the worker out and cancels its calls in flight: a frozen worker (SIGSTOP, a long GC pause, a dead
     * host whose TCP connection has not timed out yet) would otherwise hold every dispatch waiting on it until
     * the dispatch deadline, although the health check already knows it is gone.
     */
    void markDown(String why) {
        live = false;
        lastError = why;
        for (ListenableFuture<RunExpertsResponse> f : inFlight) {
            f.cancel(false);
        }
    }

    void markLive() {
        live = true;
    }

    public String lastError() {
        return lastError;
    }

    /** Sends one RunExperts call; the future is cancelled if the worker is taken out before it answers. */
    ListenableFuture<RunExpertsResponse> run(RunExpertsRequest request, Duration deadline) {
        // The generated stub's call, with answers parsed without copying their outputs (RunExpertsWire).
        ListenableFuture<RunExpertsResponse> f = ClientCalls.futureUnaryCall(channel.newCall(
                RunExpertsWire.CLIENT_METHOD,
                async.getCallOptions().withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)), request);
        inFlight.add(f);
        f.addListener(() -> inFlight.remove(f), MoreExecutors.directExecutor());
        if (!live) {
            f.cancel(false); // taken out between the caller's liveness check and the send
        }
        return f;
    }

    /**
     * How long a RunExperts call may run before its pairs are re-sent to other replicas: {@code multiple} times
     * this worker's recent p99 (see {@link DispatchStats}), but not below {@code floor}; unbounded until
     * {@code minCalls} calls were seen (no p99 to speak of yet).
     */
    long hedgeAfterNanos(double multiple, Duration floor, int minCalls) {
        long p99 = p99Nanos;
        if (multiple <= 0 || okCalls.get() < minCalls || p99 < 0) {
            return Long.MAX_VALUE;
        }
        return Math.max(floor.toNanos(), (long) Math.min(Long.MAX_VALUE / 2.0, multiple * p99));
    }

    /** Counts one RunExperts call; returns the successful calls so far. */
    long recordCall(int tokenCount, boolean ok) {
        calls.incrementAndGet();
        if (ok) {
            tokens.addAndGet(tokenCount);
            return okCalls.incrementAndGet();
        }
        failures.incrementAndGet();
        return okCalls.get();
    }

    /** The p99 {@link #hedgeAfterNanos} multiplies. */
    void hedgeP99Nanos(long nanos) {
        p99Nanos = Math.max(0, nanos);
    }

    GetWorkerStatusResponse status(Duration deadline) {
        return blocking.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
                .getWorkerStatus(GetWorkerStatusRequest.getDefaultInstance());
    }

    void load(Map<Integer, int[]> experts, Duration deadline) {
        if (experts.isEmpty()) {
            return;
        }
        LoadExpertsRequest.Builder b = LoadExpertsRequest.newBuilder();
        experts.forEach((l, ids) -> b.addLayers(layer(l, ids)));
        blocking.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).loadExperts(b.build());
    }

    void unload(Map<Integer, int[]> experts, Duration deadline) {
        if (experts.isEmpty()) {
            return;
        }
        UnloadExpertsRequest.Builder b = UnloadExpertsRequest.newBuilder();
        experts.forEach((l, ids) -> b.addLayers(layer(l, ids)));
        blocking.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS).unloadExperts(b.build());
    }

    /** True when the worker answers its health check with SERVING within {@code deadline}. */
    boolean healthy(Duration deadline) {
        try {
            return health.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()).getStatus()
                    == HealthCheckResponse.ServingStatus.SERVING;
        } catch (RuntimeException e) {
            return false;
        }
    }

    private static LayerExperts layer(int l, int[] ids) {
        LayerExperts.Builder b = LayerExperts.newBuilder().setLayer(l);
        for (int e : ids) {
            b.addExpertIds(e);
        }
        return b.build();
    }

    /** The counts so far, with the successful calls' latency percentiles as measured ({@link DispatchStats}). */
    Stats stats(double p50Millis, double p99Millis) {
        return new Stats(address, live, calls.get(), failures.get(), tokens.get(), p50Millis, p99Millis, lastError);
    }

    /** What the router measured of one worker; latencies in milliseconds. */
    public record Stats(String address, boolean live, long calls, long failures, long tokens, double p50Millis,
                        double p99Millis, String lastError) {
    }

    @Override
    public void close() {
        channel.shutdownNow();
    }
}
