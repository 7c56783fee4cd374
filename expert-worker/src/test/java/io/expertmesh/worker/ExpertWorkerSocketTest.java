package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.GetWorkerStatusRequest;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A worker on a real socket (port 0), called over TCP with deadlines. */
class ExpertWorkerSocketTest {

    @Test
    void realSocket_runExpertsAndHealth_overTcp() throws Exception {
        Kernels kernels = WorkerFixture.kernels();
        try (ExpertWorkerServer server = new ExpertWorkerServer(
                new WorkerConfig(WorkerFixture.MODEL, 0, ExpertSelection.parse("shard:1/2")), kernels).start()) {
            server.awaitLoaded();
            assertTrue(server.port() > 0);
            ManagedChannel ch = ManagedChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
            try {
                assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10,
                        TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance()).getStatus());
                ExpertServiceGrpc.ExpertServiceBlockingStub stub = ExpertServiceGrpc.newBlockingStub(ch)
                        .withDeadlineAfter(10, TimeUnit.SECONDS);
                RunExpertsRequest req = WorkerFixture.randomRequest(new Random(21), 1, 8,
                        HiddenEncoding.HIDDEN_ENCODING_F32, new int[]{1, 3, 5, 7});
                RunExpertsResponse r = stub.runExperts(req);
                assertArrayEquals(WorkerFixture.reference(req, kernels), WorkerFixture.decode(r.getOutputs(),
                        r.getEncoding(), 8 * WorkerFixture.HIDDEN));
                assertEquals(1, stub.getWorkerStatus(GetWorkerStatusRequest.getDefaultInstance())
                        .getRequestsServed());
            } finally {
                ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            }
        }
    }
}
