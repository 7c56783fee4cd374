package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Over a real socket: a call with oversized request metadata fails alone, RESOURCE_EXHAUSTED, and a stream in
 * flight on the same connection goes on to its end.
 */
class OversizedMetadataTest {

    static Metadata metadataOf(int bytes) {
        Metadata m = new Metadata();
        m.put(Metadata.Key.of("x-padding", Metadata.ASCII_STRING_MARSHALLER), "p".repeat(bytes));
        return m;
    }

    @Test
    void call_metadataOverLimit_resourceExhaustedAndOtherStreamOnConnectionCompletes() throws Exception {
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 4, 4, true),
                4096, Duration.ofSeconds(1));
        try (RouterServer server = new RouterServer(config).start(() -> TestModels.load(TestModels.FIXTURE))) {
            server.awaitLoaded();
            // one channel to one address: one HTTP/2 connection for every call below
            ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext()
                    .build();
            try {
                var stub = InferenceServiceGrpc.newStub(channel);
                var blocking = InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
                CountDownLatch firstToken = new CountDownLatch(1);
                AtomicInteger tokens = new AtomicInteger();
                CompletableFuture<FinishReason> inFlight = new CompletableFuture<>();
                stub.generate(GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder().addAllIds(
                                IntStream.of(0, 818, 726, 297, 56, 207, 375, 667).boxed().toList()))
                        .setMaxTokens(200).setIgnoreEos(true).build(), new StreamObserver<>() {
                            private FinishReason reason;

                            @Override
                            public void onNext(GenerateResponse r) {
                                tokens.addAndGet(r.getTokensCount());
                                firstToken.countDown();
                                if (r.hasFinished()) {
                                    reason = r.getFinished().getReason();
                                }
                            }

                            @Override
                            public void onError(Throwable t) {
                                inFlight.completeExceptionally(t);
                            }

                            @Override
                            public void onCompleted() {
                                inFlight.complete(reason);
                            }
                        });
                assertTrue(firstToken.await(30, TimeUnit.SECONDS));
                // between gRPC's usual 8 KiB and 10 KiB (was UNKNOWN), over 10 KiB (closed the connection), and
                // far over
                for (int bytes : new int[] {9 << 10, 12 << 10, 40 << 10}) {
                    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> blocking
                            .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(metadataOf(bytes)))
                            .getStatus(GetStatusRequest.getDefaultInstance()));
                    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode(), bytes + ": " + e.getStatus());
                    assertTrue(e.getStatus().getDescription().contains("at most 8192"), e.getStatus().getDescription());
                }
                assertEquals(FinishReason.FINISH_REASON_LENGTH, inFlight.get(60, TimeUnit.SECONDS));
                assertEquals(200, tokens.get());
                // metadata within the limit is fine, on the same connection
                assertTrue(blocking.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(metadataOf(6 << 10)))
                        .getStatus(GetStatusRequest.getDefaultInstance()).getServing());
            } finally {
                channel.shutdownNow();
            }
        }
    }
}
