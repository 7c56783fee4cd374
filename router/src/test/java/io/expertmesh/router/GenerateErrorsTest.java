package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.BadRequest;
import io.expertmesh.proto.inference.v1.ChatMessage;
import io.expertmesh.proto.inference.v1.ChatPrompt;
import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.nio.file.Path;
import java.util.Collections;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every rejection is a clear status, and the server stays healthy after each. */
class GenerateErrorsTest {
    @TempDir
    static Path tmp;
    static TestRouter router;

    @BeforeAll
    static void start() throws Exception {
        router = TestRouter.started(TestModels.withTokenizer(tmp.resolve("model")),
                new EngineConfig(16, 64L << 20, 256, 16, 8, true));
    }

    @AfterAll
    static void stop() {
        router.close();
    }

    @AfterEach
    void serverStillWorks() {
        TestRouter.Result r = router.generate(GenerateRequest.newBuilder().setText("Hello")
                .setMaxTokens(3).setIgnoreEos(true).build());
        assertEquals(3, r.tokens().size());
        assertTrue(router.blocking.getStatus(GetStatusRequest.getDefaultInstance()).getServing());
    }

    static GenerateRequest.Builder ids(int... ids) {
        return GenerateRequest.newBuilder().setTokenIds(TokenIds.newBuilder()
                .addAllIds(IntStream.of(ids).boxed().toList()));
    }

    static StatusRuntimeException rejected(GenerateRequest req) {
        return assertThrows(StatusRuntimeException.class, () -> router.generate(req));
    }

    static void assertInvalid(GenerateRequest req, String field, String messagePart) {
        StatusRuntimeException e = rejected(req);
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().toString());
        assertTrue(e.getStatus().getDescription().contains(messagePart), e.getStatus().getDescription());
        com.google.rpc.Status detail = StatusProto.fromThrowable(e);
        boolean found = false;
        for (var any : detail.getDetailsList()) {
            try {
                for (var v : any.unpack(BadRequest.class).getFieldViolationsList()) {
                    found |= v.getField().equals(field);
                }
            } catch (com.google.protobuf.InvalidProtocolBufferException x) {
                throw new AssertionError(x);
            }
        }
        assertTrue(found, "BadRequest names field " + field + ": " + detail);
    }

    @Test
    void generate_noPrompt_invalidArgument() {
        assertInvalid(GenerateRequest.newBuilder().build(), "prompt", "one of text, token_ids or chat");
    }

    @Test
    void generate_emptyText_invalidArgument() {
        assertInvalid(GenerateRequest.newBuilder().setText("").build(), "text", "empty");
    }

    @Test
    void generate_emptyTokenIds_invalidArgument() {
        assertInvalid(ids().build(), "token_ids.ids", "empty");
    }

    @Test
    void generate_tokenOutsideVocabulary_namesIndexAndRange() {
        assertInvalid(ids(0, 5, 200000).build(), "token_ids.ids[2]", "200000 is outside the vocabulary");
    }

    @Test
    void generate_promptLongerThanContext_invalidArgument() {
        int[] prompt = new int[5000];
        assertInvalid(ids(prompt).build(), "prompt", "the context holds 4096");
    }

    @Test
    void generate_maxTokensZero_invalidArgument() {
        assertInvalid(ids(0, 5).setMaxTokens(0).build(), "max_tokens", "must be >= 1");
    }

    @Test
    void generate_maxTokensBeyondContext_invalidArgument() {
        assertInvalid(ids(0, 5).setMaxTokens(5000).build(), "max_tokens", "exceeds the context");
    }

    @Test
    void generate_negativeTemperature_invalidArgument() {
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setTemperature(-0.5f)).build(),
                "sampling.temperature", "temperature");
    }

    @Test
    void generate_topPOutOfRange_invalidArgument() {
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setTopP(1.5f)).build(),
                "sampling.top_p", "top_p must be in (0, 1]");
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setTopP(0f)).build(),
                "sampling.top_p", "top_p must be in (0, 1]");
    }

    @Test
    void generate_malformedChat_invalidArgument() {
        assertInvalid(GenerateRequest.newBuilder().setChat(ChatPrompt.newBuilder()).build(), "chat.messages",
                "no messages");
        assertInvalid(GenerateRequest.newBuilder().setChat(ChatPrompt.newBuilder().addMessages(
                ChatMessage.newBuilder().setRole("wizard").setContent("hi"))).build(), "chat.messages[0].role",
                "wizard");
    }

    @Test
    void generate_tooManyStopStrings_invalidArgument() {
        assertInvalid(ids(0, 5).addAllStop(Collections.nCopies(17, "x")).build(), "stop", "at most 16");
    }

    @Test
    void generate_tooLongStopString_invalidArgument() {
        assertInvalid(ids(0, 5).addStop("y".repeat(300)).build(), "stop[0]", "stop[0]");
    }

    @Test
    void generate_topLogprobsTooMany_invalidArgument() {
        assertInvalid(ids(0, 5).setTopLogprobs(50).build(), "top_logprobs", "top_logprobs");
    }

    @Test
    void generate_repetitionPenaltyThatMakesLogitsInfinite_invalidArgument() {
        // 1e-45 is > 0 and finite, but a positive logit divided by it is infinite
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setTemperature(1f)
                .setRepetitionPenalty(1e-45f)).build(), "sampling.repetition_penalty", "[0.01, 100]");
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setRepetitionPenalty(1000f)).build(),
                "sampling.repetition_penalty", "[0.01, 100]");
    }

    @Test
    void generate_temperatureAboveBound_invalidArgument() {
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setTemperature(1e30f)).build(),
                "sampling.temperature", "[0, 100]");
    }

    @Test
    void generate_samplingValuesAtTheirBounds_accepted() {
        TestRouter.Result r = router.generate(ids(0, 5).setMaxTokens(2).setIgnoreEos(true)
                .setSampling(SamplingParams.newBuilder().setTemperature(100f).setRepetitionPenalty(0.01f)
                        .setPresencePenalty(-2f).setFrequencyPenalty(2f).setMinP(0.5f).setTopP(0.01f))
                .build());
        assertEquals(2, r.tokens().size());
    }

    @Test
    void generate_penaltyOutOfRange_namesTheSamplingField() {
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setFrequencyPenalty(2.5f)).build(),
                "sampling.frequency_penalty", "frequency_penalty must be in [-2, 2]");
        assertInvalid(ids(0, 5).setSampling(SamplingParams.newBuilder().setTopK(-2)).build(),
                "sampling.top_k", "top_k");
    }

    @Test
    void generate_requestIdOver256Bytes_invalidArgument() {
        // every streamed message repeats the id: 1 MiB of id made 65 MiB of responses
        assertInvalid(ids(0, 5).setRequestId("é".repeat(129)).build(), "request_id", "258 bytes; at most 256");
        TestRouter.Result ok = router.generate(ids(0, 5).setRequestId("x".repeat(256)).setMaxTokens(1).build());
        assertEquals(1, ok.tokens().size());
    }

    @Test
    void generate_textLongerThanTheContextCanHold_refusedByItsSize() {
        // the test model's context is 4096 tokens: at most 4096 * 32 bytes of text are tokenized
        String text = "hello ".repeat(4096 * 32 / 6 + 1);
        assertInvalid(GenerateRequest.newBuilder().setText(text).build(), "text", "bytes of text");
        assertInvalid(GenerateRequest.newBuilder().setChat(ChatPrompt.newBuilder().addMessages(
                ChatMessage.newBuilder().setRole("user").setContent(text))).build(), "chat.messages", "bytes of text");
    }

    @Test
    void tokenize_textLongerThanTheContextCanHold_refusedByItsSize() {
        String text = "hello ".repeat(4096 * 32 / 6 + 1);
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> router.blocking.tokenize(
                io.expertmesh.proto.inference.v1.TokenizeRequest.newBuilder().setText(text).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        assertTrue(e.getStatus().getDescription().contains("bytes of text"), e.getStatus().getDescription());
    }

    @Test
    void generate_validChat_streamsAndFinishes() {
        TestRouter.Result r = router.generate(GenerateRequest.newBuilder().setChat(ChatPrompt.newBuilder()
                .addMessages(ChatMessage.newBuilder().setRole("user").setContent("Hi!"))).setMaxTokens(4)
                .setIgnoreEos(true).setLogprobs(true).build());
        assertEquals(4, r.tokens().size());
        assertEquals(FinishReason.FINISH_REASON_LENGTH, r.finished().getReason());
        assertTrue(r.finished().getUsage().getPromptTokens() > 3);
        assertTrue(r.tokens().get(0).hasLogprob());
        assertFalse(r.finished().getUsage().getTimeToFirstTokenMs() <= 0);
    }
}
