package io.expertmesh.bench.grpc;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.protobuf.ByteString;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The floor under a remote-expert call on this machine: plain {@code RunExperts} calls over loopback to servers that
 * answer at once on their transport thread (echoing the 1 KiB of hidden states), the client waiting for every answer
 * before the next call, as the router waits for a layer. Prints the latency percentiles of each round, so the JIT's
 * warm-up shows (the first few thousand calls are several times slower than later ones).
 *
 * <pre>
 * java -cp "bench/target/classes:cli/target/expertmesh-cli.jar:cli/target/lib/*" \
 *     io.expertmesh.bench.grpc.TransportPing [servers] [rounds] [calls]
 * </pre>
 * {@code servers} (default 2) are called at once per step, as a layer calls its workers. The cli jar is on the path
 * for its logging configuration: without one, logback logs every HTTP/2 frame, and in rounds 4-8 the p50 was 197-228 us
 * against 84-154 with it (one server), 389-455 against 129-133 (two).
 */
public final class TransportPing {
    private TransportPing() {
    }

    public static void main(String[] args) throws Exception {
        int servers = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        int calls = args.length > 2 ? Integer.parseInt(args[2]) : 5000;
        if (servers < 1 || rounds < 1 || calls < 1) {
            throw new IllegalArgumentException("servers, rounds and calls must be >= 1");
        }
        Locale.setDefault(Locale.ROOT);
        List<Server> started = new ArrayList<>();
        List<ManagedChannel> channels = new ArrayList<>();
        try {
            List<ExpertServiceGrpc.ExpertServiceFutureStub> stubs = new ArrayList<>();
            for (int s = 0; s < servers; s++) {
                Server server = NettyServerBuilder.forPort(0).directExecutor().addService(new Echo()).build().start();
                started.add(server);
                ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext()
                        .directExecutor().build();
                channels.add(ch);
                stubs.add(ExpertServiceGrpc.newFutureStub(ch));
            }
            RunExpertsRequest req = RunExpertsRequest.newBuilder().setLayer(1)
                    .setHiddenStates(ByteString.copyFrom(new byte[1024])).build();
            List<ListenableFuture<RunExpertsResponse>> inFlight = new ArrayList<>(servers);
            for (int round = 1; round <= rounds; round++) {
                long[] nanos = new long[calls];
                for (int i = 0; i < calls; i++) {
                    long t0 = System.nanoTime();
                    for (ExpertServiceGrpc.ExpertServiceFutureStub stub : stubs) {
                        inFlight.add(stub.runExperts(req));
                    }
                    for (ListenableFuture<RunExpertsResponse> f : inFlight) {
                        f.get();
                    }
                    inFlight.clear();
                    nanos[i] = System.nanoTime() - t0;
                }
                Arrays.sort(nanos);
                System.out.printf("%d server(s), round %d (calls %d-%d): p50 %.1f us, p90 %.1f, p99 %.1f%n", servers,
                        round, (long) (round - 1) * calls + 1, (long) round * calls, nanos[calls / 2] / 1e3,
                        nanos[(int) (calls * 0.9)] / 1e3, nanos[(int) (calls * 0.99)] / 1e3);
            }
        } finally {
            for (ManagedChannel ch : channels) {
                ch.shutdownNow();
            }
            for (Server s : started) {
                s.shutdownNow();
            }
        }
    }

    /** Answers every call at once, on the transport thread, with the request's hidden states. */
    private static final class Echo extends ExpertServiceGrpc.ExpertServiceImplBase {
        @Override
        public void runExperts(RunExpertsRequest req, StreamObserver<RunExpertsResponse> out) {
            out.onNext(RunExpertsResponse.newBuilder().setOutputs(req.getHiddenStates()).build());
            out.onCompleted();
        }
    }
}
