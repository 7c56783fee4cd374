package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GetModelInfoRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The router over a real socket on port 0: health, model info, and greedy generation equal to the reference. */
class RouterSocketTest {

    /** Service names listed by server reflection (what grpcurl and friends use). */
    static List<String> reflectedServices(ManagedChannel channel) throws Exception {
        java.util.concurrent.CompletableFuture<List<String>> names = new java.util.concurrent.CompletableFuture<>();
        var requests = io.grpc.reflection.v1.ServerReflectionGrpc.newStub(channel).serverReflectionInfo(
                new io.grpc.stub.StreamObserver<io.grpc.reflection.v1.ServerReflectionResponse>() {
                    @Override
                    public void onNext(io.grpc.reflection.v1.ServerReflectionResponse r) {
                        names.complete(r.getListServicesResponse().getServiceList().stream()
                                .map(io.grpc.reflection.v1.ServiceResponse::getName).toList());
                    }

                    @Override
                    public void onError(Throwable t) {
                        names.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
        requests.onNext(io.grpc.reflection.v1.ServerReflectionRequest.newBuilder().setListServices("").build());
        requests.onCompleted();
        return names.get(10, TimeUnit.SECONDS);
    }

    @Test
    void generate_overTcp_reproducesReferenceGreedyTokens() throws Exception {
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        try (RouterServer server = new RouterServer(config).start(() -> TestModels.load(TestModels.FIXTURE))) {
            server.awaitLoaded();
            ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
            try {
                assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel)
                        .check(HealthCheckRequest.getDefaultInstance()).getStatus());
                var stub = InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
                assertEquals(1024, stub.getModelInfo(GetModelInfoRequest.getDefaultInstance()).getShape()
                        .getVocabSize());
                Iterator<GenerateResponse> it = stub.generate(GenerateRequest.newBuilder()
                        .setTokenIds(TokenIds.newBuilder().addAllIds(
                                IntStream.of(0, 818, 726, 297, 56, 207, 375, 667).boxed().toList()))
                        .setMaxTokens(9).setIgnoreEos(true)
                        .setSampling(io.expertmesh.proto.inference.v1.SamplingParams.newBuilder().setTemperature(0))
                        .build());
                List<Integer> ids = new ArrayList<>();
                it.forEachRemaining(r -> r.getTokensList().forEach(t -> ids.add(t.getTokenId())));
                assertEquals(List.of(765, 164, 924, 360, 550, 932, 152, 385, 494), ids);
                assertTrue(reflectedServices(channel).contains(InferenceServiceGrpc.SERVICE_NAME));
            } finally {
                channel.shutdownNow();
            }
        }
    }
}
