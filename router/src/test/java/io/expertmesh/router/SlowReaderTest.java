package io.expertmesh.router;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** A client that stops reading is cut off after a bounded buffer, and never stalls the other requests. */
class SlowReaderTest {

    static GenerateRequest request(int maxTokens) {
        return GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder()
                        .addAllIds(IntStream.of(0, 818, 726, 297).boxed().toList()))
                .setMaxTokens(maxTokens).setIgnoreEos(true).build();
    }

    @Test
    void generate_clientStopsReading_cutOffWithResourceExhaustedOthersUnaffected() throws Exception {
        try (TestRouter r = new TestRouter(TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 4, 4, true),
                () -> TestModels.load(TestModels.FIXTURE), 64)) {
            r.server.awaitLoaded();
            CompletableFuture<Status> outcome = new CompletableFuture<>();
            r.async.generate(request(200), new ClientResponseObserver<GenerateRequest, GenerateResponse>() {
                @Override
                public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                    // Take one message, then never ask for more: the server must buffer, then give up.
                    requestStream.disableAutoRequestWithInitial(1);
                }

                @Override
                public void onNext(GenerateResponse value) {
                }

                @Override
                public void onError(Throwable t) {
                    outcome.complete(Status.fromThrowable(t));
                }

                @Override
                public void onCompleted() {
                    outcome.complete(Status.OK);
                }
            });
            // Meanwhile another request (fewer tokens than the bound, so a normal reader cannot hit it) runs to the end.
            assertEquals(50, r.generate(request(50)).tokens().size());
            Status status = outcome.get(30, TimeUnit.SECONDS);
            assertEquals(Status.Code.RESOURCE_EXHAUSTED, status.getCode(), status.toString());
            assertTrue(status.getDescription().contains("did not read"), status.getDescription());
            // The engine ends the cut-off sequence on its next step and publishes its status after that step.
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                var s = r.blocking.getStatus(GetStatusRequest.getDefaultInstance());
                assertEquals(0, s.getRunning());
                assertEquals(s.getKvCache().getTotalBlocks(), s.getKvCache().getFreeBlocks());
                assertEquals(1L, s.getFinishedOrDefault("cancelled", 0));
            });
        }
    }
}
