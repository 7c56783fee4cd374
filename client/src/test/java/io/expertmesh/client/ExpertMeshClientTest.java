package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The client against the fake InferenceService, in-process. */
class ExpertMeshClientTest {
    private FakeInferenceService service;
    private FakeRouter router;
    private ExpertMeshClient client;

    @BeforeEach
    void start() {
        service = new FakeInferenceService();
        router = FakeRouter.inProcess(service);
        client = router.client(ClientConfig.defaults());
    }

    @AfterEach
    void stop() throws InterruptedException {
        client.close();
        router.close();
    }

    private static GenerateRequest ids(int maxTokens, int... ids) {
        return Requests.tokenIds(ids).setMaxTokens(maxTokens).setSampling(Requests.greedy()).build();
    }

    @Test
    void generate_tokenPrompt_collectsTokensTextAndFinish() {
        GenerateResult r = client.generate(ids(5, 1, 2, 3));
        assertArrayEquals(Arrays.copyOf(FakeInferenceService.SCRIPT, 5), r.tokenIds());
        assertEquals(" t765 t164 t924 t11 t42", r.text());
        assertEquals(FinishReason.FINISH_REASON_LENGTH, r.finishReason());
        assertEquals(3, r.usage().getPromptTokens());
        assertEquals(5, r.usage().getCompletionTokens());
        assertEquals("fake-1", r.requestId());
        assertEquals(3, service.lastRequest().getTokenIds().getIdsCount());
        assertEquals(0f, service.lastRequest().getSampling().getTemperature());
    }

    @Test
    void generate_maxTokensBeyondScript_finishesWithStop() {
        GenerateResult r = client.generate(Requests.text("hello").setMaxTokens(100).setRequestId("abc").build());
        assertEquals(FakeInferenceService.SCRIPT.length, r.tokens().size());
        assertEquals(FinishReason.FINISH_REASON_STOP, r.finishReason());
        assertEquals("abc", r.requestId());
    }

    @Test
    void generate_listener_receivesTokensInOrderThenFinished() throws Exception {
        List<GeneratedToken> tokens = new CopyOnWriteArrayList<>();
        CompletableFuture<Finished> done = new CompletableFuture<>();
        client.generate(ids(5, 1).toBuilder().setTopLogprobs(3).build(), new GenerateListener() {
            @Override
            public void onTokens(List<GeneratedToken> batch) {
                tokens.addAll(batch);
            }

            @Override
            public void onFinished(Finished finished) {
                done.complete(finished);
            }

            @Override
            public void onError(ExpertMeshException error) {
                done.completeExceptionally(error);
            }
        });
        Finished f = done.get(5, TimeUnit.SECONDS);
        assertEquals(FinishReason.FINISH_REASON_LENGTH, f.getReason());
        assertEquals(5, tokens.size());
        for (int i = 0; i < tokens.size(); i++) {
            assertEquals(i, tokens.get(i).getIndex());
            assertEquals(-0.125f * (i + 1), tokens.get(i).getLogprob());
            assertEquals(3, tokens.get(i).getTopLogprobsCount());
        }
    }

    @Test
    void generateStream_fiveTokens_threeMessagesLastCarriesFinished() {
        List<GenerateResponse> responses = new ArrayList<>();
        try (GenerateStream stream = client.generateStream(ids(5, 1))) {
            stream.forEachRemaining(responses::add);
        }
        assertEquals(3, responses.size());
        assertFalse(responses.get(0).hasFinished());
        assertTrue(responses.get(2).hasFinished());
        assertEquals(1, responses.get(2).getTokensCount());
    }

    @Test
    void generate_badFields_throwsInvalidArgumentWithFieldViolations() {
        GenerateRequest bad = Requests.tokenIds(1, 5000).setMaxTokens(0)
                .setSampling(SamplingParams.newBuilder().setTopP(1.5f)).build();
        ExpertMeshException e = assertThrows(ExpertMeshException.class, () -> client.generate(bad));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
        List<String> fields = e.fieldViolations().stream().map(ExpertMeshException.FieldViolation::field).toList();
        assertEquals(List.of("token_ids.ids[1]", "max_tokens", "sampling.top_p"), fields);
        assertTrue(e.getMessage().startsWith("INVALID_ARGUMENT: invalid GenerateRequest: 3 field(s) ("),
                e.getMessage());
        assertTrue(e.getMessage().contains("sampling.top_p: must be in (0, 1], got 1.5"), e.getMessage());
        assertInstanceOf(StatusRuntimeException.class, e);
    }

    @Test
    void generate_badFieldsThroughListener_onErrorCarriesFieldViolations() throws Exception {
        CompletableFuture<ExpertMeshException> error = new CompletableFuture<>();
        client.generate(Requests.text("").build(), new GenerateListener() {
            @Override
            public void onTokens(List<GeneratedToken> tokens) {
                error.completeExceptionally(new AssertionError("tokens"));
            }

            @Override
            public void onFinished(Finished finished) {
                error.completeExceptionally(new AssertionError("finished"));
            }

            @Override
            public void onError(ExpertMeshException e) {
                error.complete(e);
            }
        });
        ExpertMeshException e = error.get(5, TimeUnit.SECONDS);
        assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
        assertEquals("text", e.fieldViolations().getFirst().field());
    }

    @Test
    void generate_queueFull_throwsResourceExhaustedWithoutViolations() {
        service.failNextGenerate(Status.RESOURCE_EXHAUSTED.withDescription("waiting queue is full (64)"));
        ExpertMeshException e = assertThrows(ExpertMeshException.class, () -> client.generate(ids(4, 1)));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.code());
        assertEquals("waiting queue is full (64)", e.description());
        assertTrue(e.fieldViolations().isEmpty());
        assertEquals("RESOURCE_EXHAUSTED: waiting queue is full (64)", e.getMessage());
    }

    @Test
    void generate_cancelThroughHandle_serverSeesCancellationAndListenerGetsCancelled() throws Exception {
        service.tokenDelay(Duration.ofMillis(200));
        CompletableFuture<ExpertMeshException> error = new CompletableFuture<>();
        CompletableFuture<Void> started = new CompletableFuture<>();
        GenerateCall call = client.generate(ids(8, 1), new GenerateListener() {
            @Override
            public void onTokens(List<GeneratedToken> tokens) {
                started.complete(null);
            }

            @Override
            public void onFinished(Finished finished) {
                error.completeExceptionally(new AssertionError("finished"));
            }

            @Override
            public void onError(ExpertMeshException e) {
                error.complete(e);
            }
        });
        started.get(5, TimeUnit.SECONDS);
        call.cancel("user pressed ^C");
        assertEquals(Status.Code.CANCELLED, error.get(5, TimeUnit.SECONDS).code());
        assertTrue(service.awaitCancelled(Duration.ofSeconds(5)));
    }

    @Test
    void generateStream_closedAfterFirstMessage_serverSeesCancellation() throws Exception {
        service.tokenDelay(Duration.ofMillis(100));
        try (GenerateStream stream = client.generateStream(ids(8, 1))) {
            assertEquals(2, stream.next().getTokensCount());
        }
        assertTrue(service.awaitCancelled(Duration.ofSeconds(5)));
    }

    @Test
    void generate_slowerThanGenerateDeadline_throwsDeadlineExceededAndServerStops() throws Exception {
        service.tokenDelay(Duration.ofMillis(300));
        try (ExpertMeshClient c = router.client(ClientConfig.defaults()
                .withGenerateDeadline(Duration.ofMillis(100)))) {
            ExpertMeshException e = assertThrows(ExpertMeshException.class, () -> c.generate(ids(8, 1)));
            assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
        }
        assertTrue(service.awaitCancelled(Duration.ofSeconds(5)));
    }

    @Test
    void generate_listenerThrows_callCancelledAndOnErrorCalled() throws Exception {
        service.tokenDelay(Duration.ofMillis(50));
        CompletableFuture<ExpertMeshException> error = new CompletableFuture<>();
        client.generate(ids(8, 1), new GenerateListener() {
            @Override
            public void onTokens(List<GeneratedToken> tokens) {
                throw new IllegalStateException("listener bug");
            }

            @Override
            public void onFinished(Finished finished) {
                error.completeExceptionally(new AssertionError("finished"));
            }

            @Override
            public void onError(ExpertMeshException e) {
                error.complete(e);
            }
        });
        ExpertMeshException e = error.get(5, TimeUnit.SECONDS);
        assertEquals(Status.Code.CANCELLED, e.code());
        assertInstanceOf(IllegalStateException.class, e.getCause());
        assertTrue(service.awaitCancelled(Duration.ofSeconds(5)));
    }

    @Test
    void generate_streamEndsWithoutFinished_throwsInternal() {
        service.omitFinished(true);
        ExpertMeshException e = assertThrows(ExpertMeshException.class, () -> client.generate(ids(3, 1)));
        assertEquals(Status.Code.INTERNAL, e.code());
    }

    @Test
    void tokenizeThenDetokenize_text_roundTrips() {
        int[] ids = client.tokenize(Requests.tokenize("hi")).getIdsList().stream().mapToInt(i -> i).toArray();
        assertArrayEquals(new int[] {0, 'h', 'i'}, ids);
        assertEquals("<bos>hi", client.detokenize(Requests.detokenize(ids)).getText());
    }

    @Test
    void modelInfo_fake_reportsModelAndShape() {
        var info = client.modelInfo();
        assertEquals(FakeInferenceService.MODEL_ID, info.getModelId());
        assertEquals(FakeInferenceService.VOCAB_SIZE, info.getShape().getVocabSize());
        assertTrue(info.getHasTokenizer());
    }

    @Test
    void status_afterGenerate_countsGeneratedTokens() {
        client.generate(ids(4, 1));
        var status = client.status();
        assertTrue(status.getServing());
        assertEquals(4, status.getGeneratedTokens());
        assertNotNull(status.getKvCache());
    }

    @Test
    void modelInfo_slowerThanUnaryDeadline_throwsDeadlineExceeded() {
        service.unaryDelay(Duration.ofMillis(500));
        try (ExpertMeshClient c = router.client(ClientConfig.defaults().withUnaryDeadline(Duration.ofMillis(50)))) {
            ExpertMeshException e = assertThrows(ExpertMeshException.class, c::modelInfo);
            assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
        }
    }

    @Test
    void close_overCallersChannel_leavesChannelOpen() {
        client.close();
        assertFalse(router.channel().isShutdown());
    }
}
