package io.expertmesh.router;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.ServerStatus;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading, cancellation, deadlines, the queue bound and drain, on the reference fixture model. */
class LifecycleTest {
    @TempDir
    static Path tmp;
    static final EngineConfig ENGINE = new EngineConfig(4, 4L << 20, 64, 1, 1, true);

    static GenerateRequest longRequest(int maxTokens) {
        return GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder()
                        .addAllIds(IntStream.of(0, 818, 726, 297, 56, 207, 375, 667).boxed().toList()))
                .setMaxTokens(maxTokens).setIgnoreEos(true).build();
    }

    static ServerStatus status(TestRouter r) {
        return r.blocking.getStatus(GetStatusRequest.getDefaultInstance());
    }

    @Test
    void generate_whileLoading_unavailableAndHealthNotServing() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        try (TestRouter r = new TestRouter(TestModels.FIXTURE, ENGINE, () -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            return TestModels.load(TestModels.FIXTURE);
        })) {
            var health = HealthGrpc.newBlockingStub(r.channel);
            assertEquals(ServingStatus.NOT_SERVING,
                    health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> r.generate(longRequest(2)));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("loading"));
            release.countDown();
            r.server.awaitLoaded();
            assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
            assertEquals(2, r.generate(longRequest(2)).tokens().size());
        }
    }

    @Test
    void generate_clientCancels_sequenceEndsAndBlocksFreed() throws Exception {
        try (TestRouter r = TestRouter.started(TestModels.FIXTURE, ENGINE)) {
            int total = status(r).getKvCache().getTotalBlocks();
            Context.CancellableContext ctx = Context.current().withCancellation();
            CompletableFuture<Void> firstToken = new CompletableFuture<>();
            ctx.run(() -> r.async.generate(longRequest(200), new StreamObserver<>() {
                @Override
                public void onNext(GenerateResponse value) {
                    firstToken.complete(null);
                }

                @Override
                public void onError(Throwable t) {
                }

                @Override
                public void onCompleted() {
                }
            }));
            firstToken.get(10, TimeUnit.SECONDS);
            // Its first token is out, so it runs (200 tokens take 200 steps): check at once, and often.
            await().pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(1)).atMost(Duration.ofSeconds(30))
                    .until(() -> {
                        ServerStatus s = status(r);
                        return s.getRunning() == 1 && s.getKvCache().getFreeBlocks() < total;
                    });
            ctx.cancel(null);
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                ServerStatus s = status(r);
                assertEquals(0, s.getRunning());
                assertEquals(total, s.getKvCache().getFreeBlocks(), "cancelled sequence's blocks are freed");
                assertEquals(1L, s.getFinishedOrDefault("cancelled", 0));
            });
            assertEquals(3, r.generate(longRequest(3)).tokens().size(), "still serving");
        }
    }

    @Test
    void generate_deadlineWhileRunning_deadlineExceededAndBlocksFreed() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        try (TestRouter r = TestRouter.started(model, new EngineConfig(16, 64L << 20, 256, 4, 4, true))) {
            int total = status(r).getKvCache().getTotalBlocks();
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> {
                Iterator<GenerateResponse> it = r.blocking.withDeadlineAfter(300, TimeUnit.MILLISECONDS)
                        .generate(longRequest(3000));
                while (it.hasNext()) {
                    it.next();
                }
            });
            assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                assertEquals(total, status(r).getKvCache().getFreeBlocks());
                assertEquals(1L, status(r).getFinishedOrDefault("cancelled", 0));
            });
            assertEquals(2, r.generate(longRequest(2)).tokens().size());
        }
    }

    @Test
    void generate_deadlineWhileQueued_deadlineExceededAndRemovedFromQueue() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        try (TestRouter r = TestRouter.started(model, new EngineConfig(16, 64L << 20, 256, 1, 4, true))) {
            Iterator<GenerateResponse> running = r.blocking.generate(longRequest(400));
            running.next();
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> r.blocking.withDeadlineAfter(50, TimeUnit.MILLISECONDS).generate(longRequest(5))
                            .forEachRemaining(x -> { }));
            assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
            running.forEachRemaining(x -> { });
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                ServerStatus s = status(r);
                assertEquals(0, s.getWaiting());
                assertEquals(1L, s.getFinishedOrDefault("cancelled", 0));
                assertEquals(s.getKvCache().getTotalBlocks(), s.getKvCache().getFreeBlocks());
            });
        }
    }

    @Test
    void generate_queueFull_resourceExhausted() throws Exception {
        try (TestRouter r = TestRouter.started(TestModels.FIXTURE, ENGINE)) {
            // max running 1, max waiting 1: one runs, one waits, the third is refused.
            Iterator<GenerateResponse> first = r.blocking.generate(longRequest(240));
            first.next();
            Iterator<GenerateResponse> second = r.blocking.generate(longRequest(2));
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> r.generate(longRequest(2)));
            assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("queue is full"));
            while (first.hasNext()) {
                first.next();
            }
            while (second.hasNext()) {
                second.next();
            }
            assertEquals(2, r.generate(longRequest(2)).tokens().size());
        }
    }

    @Test
    void drain_runningRequestFinishesNewOnesUnavailable() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        try (TestRouter r = new TestRouter(model, new EngineConfig(16, 64L << 20, 256, 4, 4, true),
                () -> TestModels.load(model), 4096, java.time.Duration.ofSeconds(60))) {
            r.server.awaitLoaded();
            Iterator<GenerateResponse> running = r.blocking.generate(longRequest(600));
            int tokens = running.next().getTokensCount();
            Thread drainer = Thread.ofPlatform().start(() -> {
                try {
                    r.server.drain();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            await().atMost(Duration.ofSeconds(30)).until(() -> r.server.engine().status().draining());
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> r.generate(longRequest(2)));
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("draining"), e.getStatus().getDescription());
            assertEquals(ServingStatus.NOT_SERVING, HealthGrpc.newBlockingStub(r.channel)
                    .check(HealthCheckRequest.getDefaultInstance()).getStatus());
            GenerateResponse last = null;
            while (running.hasNext()) {
                last = running.next();
                tokens += last.getTokensCount();
            }
            assertEquals(FinishReason.FINISH_REASON_LENGTH, last.getFinished().getReason());
            assertEquals(600, tokens);
            drainer.join(10_000);
        }
    }

    @Test
    void drain_statusFromTheFirstMoment_drainingAndNotServingTogether() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        try (TestRouter r = new TestRouter(model, new EngineConfig(16, 64L << 20, 256, 4, 4, true),
                () -> TestModels.load(model), 4096, java.time.Duration.ofSeconds(60))) {
            r.server.awaitLoaded();
            // A long prompt keeps the engine in prefill steps (256 tokens each) while the drain starts.
            GenerateRequest longPrompt = GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder()
                    .addAllIds(IntStream.range(0, 2000).map(i -> 1000 + i % 5000).boxed().toList()))
                    .setMaxTokens(20).setIgnoreEos(true).build();
            CompletableFuture<TestRouter.Result> running = CompletableFuture.supplyAsync(() -> r.generate(longPrompt));
            await().atMost(Duration.ofSeconds(30)).until(() -> status(r).getRunning() == 1);
            CompletableFuture<Boolean> drained = new CompletableFuture<>();
            Thread.ofPlatform().start(() -> {
                try {
                    drained.complete(r.server.drain());
                } catch (InterruptedException | RuntimeException e) {
                    drained.completeExceptionally(e);
                }
            });
            // Read the status as fast as it answers until it stops saying "serving": the first answer that
            // does must already say "draining" (the engine, busy with its step, publishes its own later).
            ServerStatus s = status(r);
            while (s.getServing()) {
                assertTrue(!s.getDraining(), "draining while serving: " + s);
                s = status(r);
            }
            assertTrue(s.getDraining(), "not serving, so draining: " + s);
            assertEquals(20, running.get(60, TimeUnit.SECONDS).tokens().size());
            assertTrue(drained.get(30, TimeUnit.SECONDS), "every request finished: a clean drain");
            assertTrue(r.server.drain(), "a second drain waits for the first and gives its answer");
        }
    }

    @Test
    void drain_graceOver_runningRequestCancelled() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        try (TestRouter r = new TestRouter(model, new EngineConfig(16, 64L << 20, 256, 4, 4, true),
                () -> TestModels.load(model), 1 << 20, java.time.Duration.ofMillis(100))) {
            r.server.awaitLoaded();
            Iterator<GenerateResponse> running = r.blocking.generate(longRequest(3000));
            running.next();
            Thread drainer = Thread.ofPlatform().start(() -> {
                try {
                    r.server.drain();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            GenerateResponse last = null;
            while (running.hasNext()) {
                last = running.next();
            }
            assertEquals(FinishReason.FINISH_REASON_CANCELLED, last.getFinished().getReason());
            drainer.join(10_000);
            assertFalse(r.server.drain(), "a drain that had to cancel is not clean");
        }
    }
}
