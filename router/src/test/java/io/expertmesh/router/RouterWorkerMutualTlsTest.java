package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.experts.WorkerChannels;
import io.expertmesh.security.AllowedClients;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.expertmesh.worker.ExpertSelection;
import io.expertmesh.worker.ExpertWorkerServer;
import io.expertmesh.worker.WorkerConfig;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A router reaching its expert worker over mutual TLS: with the router's certificate it generates the reference
 * tokens; with a certificate of the same CA that the worker does not allow, the worker refuses it
 * (PERMISSION_DENIED) and the router does not start serving.
 */
class RouterWorkerMutualTlsTest {
    static final EngineConfig ENGINE = new EngineConfig(4, 4L << 20, 64, 8, 8, true);

    @TempDir
    static Path dir;
    static TestCa ca;
    static ExpertWorkerServer worker;

    @BeforeAll
    static void startWorker() throws Exception {
        ca = TestCa.create(dir, "cluster");
        TestCa.Issued cert = ca.server("worker-0");
        worker = new ExpertWorkerServer(new WorkerConfig(TestModels.FIXTURE, 0, ExpertSelection.NONE),
                new VectorKernels(ComputePool.create(1)), new ServerSecurity(TlsFiles.mutualServer(cert.cert(),
                cert.key(), ca.certFile()), null, AllowedClients.parse("router"))).start();
        worker.awaitLoaded();
    }

    @AfterAll
    static void stopWorker() {
        worker.close();
    }

    /** A router (in-process API) whose channels to the worker present {@code client}'s certificate. */
    static RouterServer router(TestCa.Issued client, String name) throws Exception {
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, ENGINE, 1024, Duration.ofSeconds(1),
                KvStoreConfig.builder(KvStoreConfig.Mode.NONE).build(),
                ExpertWorkers.config(List.of("127.0.0.1:" + worker.port()), 0));
        return new RouterServer(config, InProcessServerBuilder.forName(name).directExecutor())
                .workerChannels(new WorkerChannels(TlsCredentials.channel(
                        TlsFiles.client(ca.certFile(), client.cert(), client.key())), List.of()))
                .start((RouterServer.ModelLoader) f -> TestModels.load(TestModels.FIXTURE, f));
    }

    @Test
    void routerCertificate_generatesTheReferenceTokensOnTheWorker() throws Exception {
        String name = InProcessServerBuilder.generateName();
        try (RouterServer r = router(ca.client("router"), name)) {
            r.awaitLoaded();
            assertTrue(r.experts() != null);
            ManagedChannel ch = InProcessChannelBuilder.forName(name).directExecutor().build();
            try {
                List<Integer> ids = new ArrayList<>();
                InferenceServiceGrpc.newBlockingStub(ch).generate(GenerateRequest.newBuilder()
                        .setTokenIds(TokenIds.newBuilder().addAllIds(
                                IntStream.of(0, 818, 726, 297, 56, 207, 375, 667).boxed().toList()))
                        .setMaxTokens(9).setIgnoreEos(true).setSampling(SamplingParams.newBuilder().setTemperature(0))
                        .build()).forEachRemaining(x -> x.getTokensList().forEach(t -> ids.add(t.getTokenId())));
                assertEquals(List.of(765, 164, 924, 360, 550, 932, 152, 385, 494), ids);
            } finally {
                ch.shutdownNow();
            }
        }
    }

    @Test
    void certificateTheWorkerDoesNotAllow_failsTheRoutersStart() throws Exception {
        try (RouterServer r = router(ca.client("rogue"), InProcessServerBuilder.generateName())) {
            RuntimeException e = assertThrows(RuntimeException.class, r::awaitLoaded);
            String all = chain(e);
            assertTrue(all.contains("PERMISSION_DENIED"), all);
        }
    }

    static String chain(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            sb.append(c).append(" / ");
        }
        return sb.toString();
    }
}
