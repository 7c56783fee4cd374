package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.expertmesh.proto.inference.v1.FinishReason;
import io.grpc.Status;
import java.net.ServerSocket;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The client over a real socket (Netty, port 0). */
class ExpertMeshClientSocketTest {
    @Test
    void connect_fakeOnPort0_generatesAndDescribesModel() throws Exception {
        try (FakeRouter router = FakeRouter.onSocket(new FakeInferenceService());
             ExpertMeshClient client = ExpertMeshClient.connect(router.target())) {
            assertEquals(FakeInferenceService.MODEL_ID, client.modelInfo().getModelId());
            GenerateResult r = client.generate(Requests.tokenIds(1, 2).setMaxTokens(3).build());
            assertEquals(3, r.tokens().size());
            assertEquals(FinishReason.FINISH_REASON_LENGTH, r.finishReason());
        }
    }

    @Test
    void generate_nothingListening_throwsUnavailable() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (ExpertMeshClient client = ExpertMeshClient.builder("localhost:" + port)
                .config(ClientConfig.defaults().withGenerateDeadline(Duration.ofSeconds(10))).build()) {
            ExpertMeshException e = assertThrows(ExpertMeshException.class,
                    () -> client.generate(Requests.tokenIds(1).build()));
            assertEquals(Status.Code.UNAVAILABLE, e.code());
        }
    }
}
