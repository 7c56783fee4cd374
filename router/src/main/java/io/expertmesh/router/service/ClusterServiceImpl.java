package io.expertmesh.router.service;

import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.cluster.v1.GetClusterStatusRequest;
import io.expertmesh.proto.cluster.v1.LayerExpertIds;
import io.expertmesh.proto.cluster.v1.LayerStatus;
import io.expertmesh.proto.cluster.v1.RebalanceRequest;
import io.expertmesh.proto.cluster.v1.RegisterWorkerRequest;
import io.expertmesh.proto.cluster.v1.RegisterWorkerResponse;
import io.expertmesh.proto.cluster.v1.WorkerStatus;
import io.expertmesh.router.experts.ClusterStatus;
import io.expertmesh.router.experts.ExpertCluster;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.function.Supplier;

/** The router's ClusterService: status and operations of its expert workers. */
public final class ClusterServiceImpl extends ClusterServiceGrpc.ClusterServiceImplBase {
    private final Supplier<ExpertCluster> cluster;

    /** @param cluster the router's expert cluster once started; null while loading or when experts are local */
    public ClusterServiceImpl(Supplier<ExpertCluster> cluster) {
        this.cluster = cluster;
    }

    @Override
    public void getClusterStatus(GetClusterStatusRequest request,
                                 StreamObserver<io.expertmesh.proto.cluster.v1.ClusterStatus> observer) {
        ExpertCluster c = ready(observer);
        if (c != null) {
            observer.onNext(toProto(c.status()));
            observer.onCompleted();
        }
    }

    @Override
    public void rebalance(RebalanceRequest request,
                          StreamObserver<io.expertmesh.proto.cluster.v1.ClusterStatus> observer) {
        ExpertCluster c = ready(observer);
        if (c != null) {
            c.rebalance();
            observer.onNext(toProto(c.status()));
            observer.onCompleted();
        }
    }

    @Override
    public void registerWorker(RegisterWorkerRequest request, StreamObserver<RegisterWorkerResponse> observer) {
        ExpertCluster c = ready(observer);
        if (c == null) {
            return;
        }
        try {
            c.register(request.getAddress().strip());
        } catch (IllegalArgumentException e) {
            observer.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
            return;
        }
        observer.onNext(RegisterWorkerResponse.getDefaultInstance());
        observer.onCompleted();
    }

    private ExpertCluster ready(StreamObserver<?> observer) {
        ExpertCluster c = cluster.get();
        if (c == null) {
            observer.onError(Status.FAILED_PRECONDITION.withDescription(
                    "this router has no expert workers (its experts run in process, or it is still starting)")
                    .asRuntimeException());
        }
        return c;
    }

    static io.expertmesh.proto.cluster.v1.ClusterStatus toProto(ClusterStatus s) {
        var b = io.expertmesh.proto.cluster.v1.ClusterStatus.newBuilder().setEpoch(s.epoch())
                .setRedundantExperts(s.redundantExperts()).setWireFormat(s.wire().name())
                .setRebalances(s.rebalances()).addAllUnplaced(s.unplaced()).setHedgedCalls(s.hedges());
        ClusterStatus.Breakdown d = s.breakdown();
        b.setBreakdown(io.expertmesh.proto.cluster.v1.DispatchBreakdown.newBuilder().setCalls(d.calls())
                .setQueueP50Ms(d.queueP50Millis()).setQueueP99Ms(d.queueP99Millis())
                .setComputeP50Ms(d.computeP50Millis()).setComputeP99Ms(d.computeP99Millis())
                .setOverheadP50Ms(d.overheadP50Millis()).setOverheadP99Ms(d.overheadP99Millis()));
        if (s.lastRebalance() != null) {
            b.setLastRebalanceImbalanceBefore(s.lastRebalance().imbalanceBefore())
                    .setLastRebalanceImbalanceAfter(s.lastRebalance().imbalanceAfter());
        }
        for (ClusterStatus.Worker w : s.workers()) {
            var st = w.stats();
            WorkerStatus.Builder wb = WorkerStatus.newBuilder().setAddress(st.address()).setLive(st.live())
                    .setCalls(st.calls()).setFailures(st.failures()).setTokens(st.tokens())
                    .setRpcP50Ms(st.p50Millis()).setRpcP99Ms(st.p99Millis()).setLastError(st.lastError());
            w.experts().forEach((layer, ids) -> {
                LayerExpertIds.Builder lb = LayerExpertIds.newBuilder().setLayer(layer);
                for (int e : ids) {
                    lb.addExpertIds(e);
                }
                wb.addExperts(lb);
            });
            b.addWorkers(wb);
        }
        for (ClusterStatus.Layer l : s.layers()) {
            LayerStatus.Builder lb = LayerStatus.newBuilder().setLayer(l.layer())
                    .setExpertImbalance(l.expertImbalance()).setWorkerImbalance(l.workerImbalance())
                    .setDispatches(l.dispatches()).setDispatchP50Ms(l.dispatchP50Millis())
                    .setDispatchP99Ms(l.dispatchP99Millis());
            for (long t : l.expertTokens()) {
                lb.addExpertTokens(t);
            }
            b.addLayers(lb);
        }
        return b.build();
    }
}
