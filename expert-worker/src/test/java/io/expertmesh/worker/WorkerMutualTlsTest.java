package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.GetWorkerStatusRequest;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.security.AllowedClients;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker with mutual TLS that allows only the router's certificate: a router calls RunExperts, a certificate of
 * the same CA for something else gets PERMISSION_DENIED, a caller without a certificate cannot connect.
 */
class WorkerMutualTlsTest {
    @TempDir
    static Path dir;
    static TestCa ca;
    static ExpertWorkerServer server;

    @BeforeAll
    static void start() throws Exception {
        ca = TestCa.create(dir, "cluster");
        TestCa.Issued cert = ca.server("worker-0");
        server = new ExpertWorkerServer(new WorkerConfig(WorkerFixture.MODEL, 0, ExpertSelection.parse("all")),
                WorkerFixture.kernels(), new ServerSecurity(TlsFiles.mutualServer(cert.cert(), cert.key(),
                ca.certFile()), null, AllowedClients.parse("router"))).start();
        server.awaitLoaded();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static ManagedChannel channel(TlsFiles client) {
        return Grpc.newChannelBuilderForAddress("localhost", server.port(), TlsCredentials.channel(client)).build();
    }

    static Status.Code runExperts(TlsFiles client) throws InterruptedException {
        ManagedChannel ch = channel(client);
        try {
            RunExpertsRequest req = WorkerFixture.randomRequest(new Random(3), 1, 2,
                    HiddenEncoding.HIDDEN_ENCODING_F32, new int[] {0, 1});
            ExpertServiceGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS).runExperts(req);
            return Status.Code.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode();
        } finally {
            ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void routerCertificate_runsExperts() throws Exception {
        TestCa.Issued router = ca.client("router");
        assertEquals(Status.Code.OK, runExperts(TlsFiles.client(ca.certFile(), router.cert(), router.key())));
    }

    @Test
    void nonRouterCertificate_isPermissionDenied_butSeesHealth() throws Exception {
        TestCa.Issued rogue = ca.client("rogue");
        TlsFiles files = TlsFiles.client(ca.certFile(), rogue.cert(), rogue.key());
        assertEquals(Status.Code.PERMISSION_DENIED, runExperts(files));
        ManagedChannel ch = channel(files);
        try {
            assertEquals(Status.Code.PERMISSION_DENIED, assertThrows(StatusRuntimeException.class,
                    () -> ExpertServiceGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                            .getWorkerStatus(GetWorkerStatusRequest.getDefaultInstance())).getStatus().getCode());
            assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance()).getStatus());
        } finally {
            ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void callerWithoutCertificate_cannotConnect() throws Exception {
        assertEquals(Status.Code.UNAVAILABLE, runExperts(TlsFiles.client(ca.certFile())));
    }
}
