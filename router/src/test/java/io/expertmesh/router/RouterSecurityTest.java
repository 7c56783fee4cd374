package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GetModelInfoRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.security.BearerToken;
import io.expertmesh.security.BearerTokenCredentials;
import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The router over TLS with bearer tokens: the right calls succeed, the wrong ones get the right status. */
class RouterSecurityTest {
    static final String GENERATE = "generate-token-0123456789abcdef";
    static final String ADMIN_ONLY = "admin-only-token-0123456789abcdef";

    @TempDir
    static Path dir;
    static TestCa ca;
    static RouterServer server;
    static ManagedChannel channel;

    @BeforeAll
    static void start() throws Exception {
        ca = TestCa.create(dir, "cluster");
        TestCa.Issued cert = ca.server("router");
        Path tokens = Files.write(dir.resolve("tokens"), List.of(GENERATE + " generate", ADMIN_ONLY + " admin"));
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        server = new RouterServer(config, new ServerSecurity(TlsFiles.server(cert.cert(), cert.key()),
                BearerTokens.load(tokens), null)).start(() -> TestModels.load(TestModels.FIXTURE));
        server.awaitLoaded();
        channel = Grpc.newChannelBuilderForAddress("localhost", server.port(),
                TlsCredentials.channel(TlsFiles.client(ca.certFile()))).build();
    }

    @AfterAll
    static void stop() throws Exception {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        server.close();
    }

    static InferenceServiceGrpc.InferenceServiceBlockingStub stub(String token) {
        var s = InferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
        return token == null ? s : s.withCallCredentials(new BearerTokenCredentials(BearerToken.of(token)));
    }

    static List<Integer> greedy(InferenceServiceGrpc.InferenceServiceBlockingStub stub) {
        Iterator<GenerateResponse> it = stub.generate(GenerateRequest.newBuilder()
                .setTokenIds(TokenIds.newBuilder().addAllIds(
                        IntStream.of(0, 818, 726, 297, 56, 207, 375, 667).boxed().toList()))
                .setMaxTokens(3).setIgnoreEos(true).setSampling(SamplingParams.newBuilder().setTemperature(0))
                .build());
        List<Integer> ids = new ArrayList<>();
        it.forEachRemaining(r -> r.getTokensList().forEach(t -> ids.add(t.getTokenId())));
        return ids;
    }

    static Status.Code code(Runnable call) {
        return assertThrows(StatusRuntimeException.class, call::run).getStatus().getCode();
    }

    @Test
    void generate_withGenerateToken_overTls_reproducesReferenceTokens() {
        assertEquals(List.of(765, 164, 924), greedy(stub(GENERATE)));
        assertEquals(1024, stub(GENERATE).getModelInfo(GetModelInfoRequest.getDefaultInstance()).getShape()
                .getVocabSize());
    }

    @Test
    void generate_withoutToken_isUnauthenticated() {
        assertEquals(Status.Code.UNAUTHENTICATED, code(() -> greedy(stub(null))));
        assertEquals(Status.Code.UNAUTHENTICATED,
                code(() -> stub(null).getModelInfo(GetModelInfoRequest.getDefaultInstance())));
    }

    @Test
    void generate_withUnknownToken_isUnauthenticated() {
        assertEquals(Status.Code.UNAUTHENTICATED, code(() -> greedy(stub("not-a-known-token-0123456789"))));
    }

    @Test
    void generate_withTokenWithoutGenerateScope_isPermissionDenied() {
        assertEquals(Status.Code.PERMISSION_DENIED, code(() -> greedy(stub(ADMIN_ONLY))));
    }

    @Test
    void healthAndReflection_withoutToken_areOpen() throws Exception {
        assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .check(HealthCheckRequest.getDefaultInstance()).getStatus());
        assertTrue(RouterSocketTest.reflectedServices(channel).contains(InferenceServiceGrpc.SERVICE_NAME));
    }

    @Test
    void plaintextClient_toTlsRouter_isUnavailable() throws Exception {
        ManagedChannel plain = Grpc.newChannelBuilderForAddress("localhost", server.port(),
                InsecureChannelCredentials.create()).build();
        try {
            assertEquals(Status.Code.UNAVAILABLE, code(() -> HealthGrpc.newBlockingStub(plain)
                    .withDeadlineAfter(10, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance())));
        } finally {
            plain.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void clusterService_needsTheAdminScope() {
        var cluster = io.expertmesh.proto.cluster.v1.ClusterServiceGrpc.newBlockingStub(channel)
                .withDeadlineAfter(10, TimeUnit.SECONDS);
        var request = io.expertmesh.proto.cluster.v1.GetClusterStatusRequest.getDefaultInstance();
        assertEquals(Status.Code.UNAUTHENTICATED, code(() -> cluster.getClusterStatus(request)));
        assertEquals(Status.Code.PERMISSION_DENIED, code(() -> cluster.withCallCredentials(
                new BearerTokenCredentials(BearerToken.of(GENERATE))).getClusterStatus(request)));
        // the admin token gets through to the service, which answers that this router has no workers
        assertEquals(Status.Code.FAILED_PRECONDITION, code(() -> cluster.withCallCredentials(
                new BearerTokenCredentials(BearerToken.of(ADMIN_ONLY))).getClusterStatus(request)));
    }
}
