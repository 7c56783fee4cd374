package io.expertmesh.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.cluster.v1.GetClusterStatusRequest;
import io.expertmesh.proto.cluster.v1.RebalanceRequest;
import io.expertmesh.proto.cluster.v1.RegisterWorkerRequest;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code expertmesh admin}: a router's expert cluster: its status (placement, per-worker RPC latency, per-expert
 * token counts and imbalance) as JSON, a rebalance, or registering a worker.
 */
@Command(name = "admin", mixinStandardHelpOptions = true,
        description = "Expert cluster operations on a router: status | rebalance | register HOST:PORT.")
final class AdminCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "ACTION", description = "status, rebalance or register.")
    String action;

    @Parameters(index = "1", arity = "0..1", paramLabel = "WORKER",
            description = "register: the worker's host:port as the router reaches it.")
    String worker;

    @Option(names = "--target", paramLabel = "HOST:PORT", description = "Router address (default 127.0.0.1:50051).")
    String target = "127.0.0.1:50051";

    @Option(names = "--timeout-seconds", paramLabel = "S", description = "Deadline of the call (default 120).")
    long timeoutSeconds = 120;

    @Override
    public Integer call() throws Exception {
        ManagedChannel channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
        try {
            var stub = ClusterServiceGrpc.newBlockingStub(channel).withDeadlineAfter(timeoutSeconds,
                    TimeUnit.SECONDS);
            switch (action) {
                case "status" -> print(stub.getClusterStatus(GetClusterStatusRequest.getDefaultInstance()));
                case "rebalance" -> print(stub.rebalance(RebalanceRequest.getDefaultInstance()));
                case "register" -> {
                    if (worker == null) {
                        throw new IllegalArgumentException("admin register needs the worker's HOST:PORT");
                    }
                    stub.registerWorker(RegisterWorkerRequest.newBuilder().setAddress(worker).build());
                    System.out.println("registered " + worker + " with " + target);
                }
                default -> throw new IllegalArgumentException("admin action must be status, rebalance or register, "
                        + "got '" + action + "'");
            }
            return 0;
        } catch (StatusRuntimeException e) {
            System.err.println("expertmesh admin: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
            return 1;
        } finally {
            channel.shutdownNow();
        }
    }

    private static void print(MessageOrBuilder m) throws InvalidProtocolBufferException {
        System.out.println(JsonFormat.printer().alwaysPrintFieldsWithNoPresence().print(m));
    }
}
