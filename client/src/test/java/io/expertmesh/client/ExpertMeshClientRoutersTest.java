package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.grpc.Status;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** One client, several routers on loopback sockets: round robin, and the retry of UNAVAILABLE before a token. */
class ExpertMeshClientRoutersTest {
    static final GenerateRequest REQUEST = Requests.tokenIds(1, 2).setMaxTokens(5).build();

    /**
     * Generates until both routers have served a call, so both connections are up (round_robin picks only among
     * ready routers; connecting is asynchronous). Bounded by a call count, not by time.
     */
    static void untilBothServe(ExpertMeshClient client, FakeRouter a, FakeRouter b) {
        for (int i = 0; i < 10_000 && (a.service().generateCalls() == 0 || b.service().generateCalls() == 0); i++) {
            client.generate(REQUEST);
        }
        assertTrue(a.service().generateCalls() > 0 && b.service().generateCalls() > 0,
                "a " + a.service().generateCalls() + ", b " + b.service().generateCalls());
    }

    static ExpertMeshClient client(FakeRouter... routers) {
        List<String> targets = new ArrayList<>();
        for (FakeRouter r : routers) {
            targets.add(r.target());
        }
        return ExpertMeshClient.builder(targets).build();
    }

    @Test
    void twoRouters_callsAlternateBetweenThem() throws Exception {
        try (FakeRouter a = FakeRouter.onSocket(new FakeInferenceService());
             FakeRouter b = FakeRouter.onSocket(new FakeInferenceService());
             ExpertMeshClient client = client(a, b)) {
            assertEquals(a.target() + "," + b.target(), client.target());
            untilBothServe(client, a, b);
            int a0 = a.service().generateCalls();
            int b0 = b.service().generateCalls();
            for (int i = 0; i < 10; i++) {
                assertEquals(5, client.generate(REQUEST).tokens().size());
            }
            assertEquals(5, a.service().generateCalls() - a0);
            assertEquals(5, b.service().generateCalls() - b0);
        }
    }

    @Test
    void routerNotListening_callsSucceedOnTheOther() throws Exception {
        int deadPort;
        try (ServerSocket s = new ServerSocket(0)) {
            deadPort = s.getLocalPort();
        }
        try (FakeRouter live = FakeRouter.onSocket(new FakeInferenceService());
             ExpertMeshClient client = ExpertMeshClient.builder(List.of("localhost:" + deadPort, live.target()))
                     .build()) {
            for (int i = 0; i < 4; i++) {
                assertEquals(5, client.generate(REQUEST).tokens().size());
            }
            assertEquals(4, live.service().generateCalls());
        }
    }

    @Test
    void routerStopped_callsSucceedOnTheOther() throws Exception {
        FakeRouter a = FakeRouter.onSocket(new FakeInferenceService());
        try (FakeRouter b = FakeRouter.onSocket(new FakeInferenceService());
             ExpertMeshClient client = client(a, b)) {
            untilBothServe(client, a, b);
            a.close();
            int b0 = b.service().generateCalls();
            for (int i = 0; i < 6; i++) {
                assertEquals(5, client.generate(REQUEST).tokens().size());
            }
            assertEquals(6, b.service().generateCalls() - b0);
        } finally {
            a.close();
        }
    }

    @Test
    void routerUnavailableBeforeAnyToken_callIsRetriedOnTheOther() throws Exception {
        try (FakeRouter a = FakeRouter.onSocket(new FakeInferenceService());
             FakeRouter b = FakeRouter.onSocket(new FakeInferenceService());
             ExpertMeshClient client = client(a, b)) {
            untilBothServe(client, a, b);
            a.service().failGenerates(Status.UNAVAILABLE.withDescription("draining"));
            int b0 = b.service().generateCalls();
            for (int i = 0; i < 4; i++) {
                assertEquals(5, client.generate(REQUEST).tokens().size());
            }
            assertEquals(4, b.service().generateCalls() - b0);
        }
    }

    @Test
    void routerUnavailableAfterAToken_callerSeesUnavailable_notARetry() throws Exception {
        try (FakeRouter a = FakeRouter.onSocket(new FakeInferenceService());
             FakeRouter b = FakeRouter.onSocket(new FakeInferenceService());
             ExpertMeshClient client = client(a, b)) {
            untilBothServe(client, a, b);
            a.service().failAfterFirstMessage(Status.UNAVAILABLE.withDescription("worker lost"));
            int a0 = a.service().generateCalls();
            int b0 = b.service().generateCalls();
            // round robin: of two calls one goes to each router
            int failed = 0;
            for (int i = 0; i < 2; i++) {
                try (GenerateStream stream = client.generateStream(REQUEST)) {
                    GenerateResponse first = stream.next();
                    assertEquals(2, first.getTokensCount());
                    try {
                        while (stream.hasNext()) {
                            stream.next();
                        }
                    } catch (ExpertMeshException e) {
                        assertEquals(Status.Code.UNAVAILABLE, e.code());
                        assertEquals("worker lost", e.description());
                        failed++;
                    }
                }
            }
            assertEquals(1, failed);
            assertEquals(1, a.service().generateCalls() - a0);
            assertEquals(1, b.service().generateCalls() - b0, "the failed call must not be sent again");
        }
    }

    @Test
    void builder_badTargets_clearErrors() {
        assertEquals("no target given; expected HOST:PORT (or several, comma-separated)",
                assertThrows(IllegalArgumentException.class, () -> ExpertMeshClient.builder(List.of())).getMessage());
        assertEquals("bad router address 'localhost:x': the port must be a number",
                assertThrows(IllegalArgumentException.class,
                        () -> ExpertMeshClient.builder(List.of("localhost:1", "localhost:x"))).getMessage());
    }
}
