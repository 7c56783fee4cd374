package io.expertmesh.worker;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Where a socket worker computes: a decode-sized call on the thread that received it (no hand-off), a longer
 * call on the service's own threads, so the connection's health checks answer while it runs, and a short call
 * that finds the experts busy waits off the transport thread too. Results are the same either way.
 */
class TransportThreadTest {
    private static final int[] ALLOWED = {0, 1, 2, 3, 4, 5, 6, 7};

    @Test
    void shortCallsComputeOnTheTransportThread_longOnesElsewhere_healthAnswersMeanwhile() throws Exception {
        Kernels kernels = WorkerFixture.kernels();
        List<String> threads = new CopyOnWriteArrayList<>();
        CountDownLatch longCallEntered = new CountDownLatch(1);
        CountDownLatch releaseLongCall = new CountDownLatch(1);
        int longTokens = ExpertServiceImpl.INLINE_MAX_TOKENS + 1;
        ExpertRunner.Factory gated = (layer, experts, hidden) -> {
            ExpertRunner cpu = ExpertRunner.Factory.CPU.create(layer, experts, hidden);
            return (xn, tokens, offsets, ids, weights, out, ctx) -> {
                threads.add(tokens + " " + Thread.currentThread().getName());
                if (tokens == longTokens) {
                    longCallEntered.countDown();
                    await().atMost(Duration.ofMinutes(1)).until(() -> releaseLongCall.getCount() == 0);
                }
                cpu.run(xn, tokens, offsets, ids, weights, out, ctx);
            };
        };
        try (ExpertWorkerServer server = new ExpertWorkerServer(
                new WorkerConfig(WorkerFixture.MODEL, 0, ExpertSelection.ALL), kernels).expertRunners(gated).start()) {
            ExpertExecutor executor = server.awaitLoaded();
            ManagedChannel ch = ManagedChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
            try {
                ExpertServiceGrpc.ExpertServiceFutureStub stub = ExpertServiceGrpc.newFutureStub(ch);
                Random rnd = new Random(3);
                RunExpertsRequest small = WorkerFixture.randomRequest(rnd, 1, 2, HiddenEncoding.HIDDEN_ENCODING_F32,
                        ALLOWED);
                RunExpertsRequest large = WorkerFixture.randomRequest(rnd, 1, longTokens,
                        HiddenEncoding.HIDDEN_ENCODING_F32, ALLOWED);
                RunExpertsRequest queued = WorkerFixture.randomRequest(rnd, 2, 3, HiddenEncoding.HIDDEN_ENCODING_F32,
                        ALLOWED);

                RunExpertsResponse first = stub.withDeadlineAfter(1, TimeUnit.MINUTES).runExperts(small)
                        .get(1, TimeUnit.MINUTES);
                // Netty's event loop threads (grpc-default-worker-ELG-..., grpc-nio-worker-ELG-...)
                assertTrue(!threads.isEmpty() && threads.stream().allMatch(t -> t.contains("-worker-ELG-")),
                        "a short call on free experts runs on the transport thread: " + threads);
                threads.clear();

                ListenableFuture<RunExpertsResponse> longCall = stub.withDeadlineAfter(1, TimeUnit.MINUTES)
                        .runExperts(large);
                assertTrue(longCallEntered.await(1, TimeUnit.MINUTES), "the long call started");
                // The same connection: its transport thread is free while the long call computes.
                assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(ch).withDeadlineAfter(1,
                        TimeUnit.MINUTES).check(HealthCheckRequest.getDefaultInstance()).getStatus());
                ListenableFuture<RunExpertsResponse> waiting = stub.withDeadlineAfter(1, TimeUnit.MINUTES)
                        .runExperts(queued);
                await().atMost(Duration.ofMinutes(1)).until(() -> executor.lock().hasQueuedThreads());
                assertFalse(waiting.isDone(), "the short call waits for the experts");
                releaseLongCall.countDown();

                RunExpertsResponse second = longCall.get(1, TimeUnit.MINUTES);
                RunExpertsResponse third = waiting.get(1, TimeUnit.MINUTES);
                assertTrue(threads.stream().allMatch(t -> t.contains("expertmesh-worker-call")),
                        "the long call and the call that waited for it ran off the transport thread: " + threads);
                assertArrayEquals(WorkerFixture.reference(small, kernels), decoded(first, 2));
                assertArrayEquals(WorkerFixture.reference(large, kernels), decoded(second, longTokens));
                assertArrayEquals(WorkerFixture.reference(queued, kernels), decoded(third, 3));
            } finally {
                releaseLongCall.countDown();
                ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
        }
    }

    private static float[] decoded(RunExpertsResponse r, int tokens) {
        return ExpertServiceImpl.decode(r.getOutputs(), r.getEncoding(), tokens * WorkerFixture.HIDDEN);
    }
}
