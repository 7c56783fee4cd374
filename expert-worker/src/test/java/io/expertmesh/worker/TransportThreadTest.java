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
 * Where a socket worker computes: RunExperts calls on the worker's compute thread, never on the transport thread
 * that received them, so the connection's health checks answer while experts compute (a worker under load would
 * otherwise fail them and be taken out); a call arriving meanwhile waits its turn and gets the same result.
 */
class TransportThreadTest {
    private static final int[] ALLOWED = {0, 1, 2, 3, 4, 5, 6, 7};
    /** The gated call's token count: the runner holds it until the test has checked health. */
    private static final int GATED_TOKENS = 7;

    @Test
    void expertsComputeOffTheTransportThread_healthAnswersWhileTheyRun() throws Exception {
        Kernels kernels = WorkerFixture.kernels();
        List<String> threads = new CopyOnWriteArrayList<>();
        CountDownLatch gatedEntered = new CountDownLatch(1);
        CountDownLatch releaseGated = new CountDownLatch(1);
        ExpertRunner.Factory gated = (layer, experts, hidden) -> {
            ExpertRunner cpu = ExpertRunner.Factory.CPU.create(layer, experts, hidden);
            return (xn, tokens, offsets, ids, weights, out, ctx) -> {
                threads.add(Thread.currentThread().getName());
                if (tokens == GATED_TOKENS) {
                    gatedEntered.countDown();
                    await().atMost(Duration.ofMinutes(1)).until(() -> releaseGated.getCount() == 0);
                }
                cpu.run(xn, tokens, offsets, ids, weights, out, ctx);
            };
        };
        try (ExpertWorkerServer server = new ExpertWorkerServer(
                new WorkerConfig(WorkerFixture.MODEL, 0, ExpertSelection.ALL), kernels).expertRunners(gated).start()) {
            server.awaitLoaded();
            ManagedChannel ch = ManagedChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
            try {
                ExpertServiceGrpc.ExpertServiceFutureStub stub = ExpertServiceGrpc.newFutureStub(ch);
                Random rnd = new Random(3);
                RunExpertsRequest small = WorkerFixture.randomRequest(rnd, 1, 2, HiddenEncoding.HIDDEN_ENCODING_F32,
                        ALLOWED);
                RunExpertsRequest held = WorkerFixture.randomRequest(rnd, 1, GATED_TOKENS,
                        HiddenEncoding.HIDDEN_ENCODING_F32, ALLOWED);
                RunExpertsRequest queued = WorkerFixture.randomRequest(rnd, 2, 3, HiddenEncoding.HIDDEN_ENCODING_F32,
                        ALLOWED);

                RunExpertsResponse first = stub.withDeadlineAfter(1, TimeUnit.MINUTES).runExperts(small)
                        .get(1, TimeUnit.MINUTES);
                ListenableFuture<RunExpertsResponse> heldCall = stub.withDeadlineAfter(1, TimeUnit.MINUTES)
                        .runExperts(held);
                assertTrue(gatedEntered.await(1, TimeUnit.MINUTES), "the gated call started");
                // The same connection: its transport thread is free while the experts compute.
                assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(ch).withDeadlineAfter(1,
                        TimeUnit.MINUTES).check(HealthCheckRequest.getDefaultInstance()).getStatus());
                ListenableFuture<RunExpertsResponse> waiting = stub.withDeadlineAfter(1, TimeUnit.MINUTES)
                        .runExperts(queued);
                assertFalse(heldCall.isDone(), "the gated call is still computing");
                releaseGated.countDown();

                RunExpertsResponse second = heldCall.get(1, TimeUnit.MINUTES);
                RunExpertsResponse third = waiting.get(1, TimeUnit.MINUTES);
                assertEquals(3, threads.size(), "one runner call per RunExperts call: " + threads);
                assertTrue(threads.stream().allMatch(t -> t.equals("expertmesh-worker-compute")),
                        "every call computed on the worker's compute thread: " + threads);
                assertArrayEquals(WorkerFixture.reference(small, kernels), decoded(first, 2));
                assertArrayEquals(WorkerFixture.reference(held, kernels), decoded(second, GATED_TOKENS));
                assertArrayEquals(WorkerFixture.reference(queued, kernels), decoded(third, 3));
            } finally {
                releaseGated.countDown();
                ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
        }
    }

    private static float[] decoded(RunExpertsResponse r, int tokens) {
        return WorkerFixture.decode(r.getOutputs(), r.getEncoding(), tokens * WorkerFixture.HIDDEN);
    }
}
