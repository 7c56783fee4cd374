package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.proto.inference.v1.Usage;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code /v1/completions} over a real socket on the DeepSeek reference fixture (no tokenizer: prompts are token
 * ids and logprob tokens read {@code token_id:N}), next to gRPC on the same router: same greedy tokens, same
 * logprobs, same usage, and the same validation with OpenAI's error shape.
 */
class OpenAiCompletionsTest {
    static final int[] PROMPT = {0, 818, 726, 297, 56, 207, 375, 667};
    static final List<Integer> REFERENCE = List.of(765, 164, 924, 360, 550, 932, 152, 385, 494);

    static RouterServer server;
    static ManagedChannel channel;
    static OpenAiClient http;

    @BeforeAll
    static void start() throws Exception {
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        server = new RouterServer(config).httpPort(0).start(() -> TestModels.load(TestModels.FIXTURE));
        server.awaitLoaded();
        channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
        http = new OpenAiClient(server.httpPort());
    }

    @AfterAll
    static void stop() throws Exception {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        server.close();
    }

    static ObjectNode greedy(int maxTokens) {
        ObjectNode b = OpenAiClient.body().put("model", "f32").put("max_tokens", maxTokens).put("temperature", 0)
                .put("ignore_eos", true);
        IntStream.of(PROMPT).forEach(b.putArray("prompt")::add);
        return b;
    }

    /** The same request over gRPC: its tokens and its usage. */
    static List<GeneratedToken> grpc(int maxTokens, int topLogprobs, Consumer<Usage> usage) {
        Iterator<GenerateResponse> it = InferenceServiceGrpc.newBlockingStub(channel)
                .withDeadlineAfter(30, TimeUnit.SECONDS).generate(GenerateRequest.newBuilder()
                        .setTokenIds(TokenIds.newBuilder().addAllIds(IntStream.of(PROMPT).boxed().toList()))
                        .setMaxTokens(maxTokens).setIgnoreEos(true).setLogprobs(true).setTopLogprobs(topLogprobs)
                        .setSampling(SamplingParams.newBuilder().setTemperature(0)).build());
        List<GeneratedToken> tokens = new ArrayList<>();
        while (it.hasNext()) {
            GenerateResponse r = it.next();
            tokens.addAll(r.getTokensList());
            if (r.hasFinished()) {
                usage.accept(r.getFinished().getUsage());
            }
        }
        return tokens;
    }

    @Test
    void completions_greedyTokenIds_equalGrpcTokensLogprobsAndUsage() {
        Usage[] first = new Usage[1];
        List<GeneratedToken> viaGrpc = grpc(9, 2, u -> first[0] = u);
        OpenAiClient.Answer a = http.post("/v1/completions", greedy(9).put("logprobs", 2));

        assertEquals(200, a.status(), a.json().toString());
        JsonNode j = a.json();
        assertEquals("text_completion", j.get("object").asText());
        assertTrue(j.get("id").asText().startsWith("cmpl-"));
        assertEquals("f32", j.get("model").asText());
        JsonNode choice = j.get("choices").get(0);
        assertEquals("length", choice.get("finish_reason").asText());
        JsonNode lp = choice.get("logprobs");
        assertEquals(REFERENCE, OpenAiClient.ids(lp.get("tokens")));
        assertEquals(viaGrpc.stream().map(GeneratedToken::getTokenId).toList(), OpenAiClient.ids(lp.get("tokens")));
        for (int i = 0; i < viaGrpc.size(); i++) {
            GeneratedToken g = viaGrpc.get(i);
            assertEquals(g.getLogprob(), lp.get("token_logprobs").get(i).floatValue(), 1e-6);
            JsonNode top = lp.get("top_logprobs").get(i);
            assertEquals(2, top.size());
            for (var alt : g.getTopLogprobsList()) {
                assertEquals(alt.getLogprob(), top.get("token_id:" + alt.getTokenId()).floatValue(), 1e-6);
            }
        }
        // the model has no tokenizer, so there is no text, and the offsets all stay at 0
        assertEquals("", choice.get("text").asText());

        JsonNode usage = j.get("usage");
        assertEquals(PROMPT.length, usage.get("prompt_tokens").asInt());
        assertEquals(9, usage.get("completion_tokens").asInt());
        assertEquals(PROMPT.length + 9, usage.get("total_tokens").asInt());
        // gRPC ran the same prompt first: its full blocks come from the shared prefix cache, as for gRPC
        Usage[] again = new Usage[1];
        grpc(1, 0, u -> again[0] = u);
        int cached = usage.get("prompt_tokens_details").get("cached_tokens").asInt();
        assertTrue(cached > 0, "prefix cache shared with gRPC: " + usage);
        assertEquals(again[0].getCachedPromptTokens(), cached);
        assertEquals(again[0].getPromptTokens(), usage.get("prompt_tokens").asInt());
    }

    @Test
    void completions_stream_sameTokensEventByEventAndUsageLast() throws Exception {
        ObjectNode body = greedy(9).put("stream", true).put("logprobs", 0);
        body.putObject("stream_options").put("include_usage", true);
        List<JsonNode> events = http.stream("/v1/completions", body);

        List<Integer> ids = new ArrayList<>();
        String finish = null;
        for (JsonNode e : events.subList(0, events.size() - 1)) {
            assertEquals("text_completion", e.get("object").asText());
            assertTrue(e.get("usage").isNull(), "usage is null on every chunk but the last: " + e);
            JsonNode c = e.get("choices").get(0);
            if (!c.get("finish_reason").isNull()) {
                finish = c.get("finish_reason").asText();
            } else {
                ids.addAll(OpenAiClient.ids(c.get("logprobs").get("tokens")));
                c.get("logprobs").get("top_logprobs").forEach(t -> assertTrue(t.isNull(), "logprobs: 0 has no top"));
            }
        }
        assertEquals(REFERENCE, ids);
        assertEquals("length", finish);
        JsonNode last = events.getLast();
        assertEquals(0, last.get("choices").size());
        assertEquals(9, last.get("usage").get("completion_tokens").asInt());
        assertEquals(PROMPT.length, last.get("usage").get("prompt_tokens").asInt());
        assertNotNull(last.get("usage").get("prompt_tokens_details").get("cached_tokens"));
        // every event of one request carries its id
        assertEquals(1, events.stream().map(e -> e.get("id").asText()).distinct().count());
    }

    @Test
    void completions_stopTokenId_finishesWithStopAndStopReason() {
        OpenAiClient.Answer a = http.post("/v1/completions", greedy(9).put("logprobs", 0)
                .set("stop_token_ids", OpenAiClient.JSON.createArrayNode().add(924)));
        assertEquals(200, a.status(), a.json().toString());
        JsonNode choice = a.json().get("choices").get(0);
        assertEquals("stop", choice.get("finish_reason").asText());
        assertEquals(924, choice.get("stop_reason").asInt());
        assertEquals(List.of(765, 164, 924), OpenAiClient.ids(choice.get("logprobs").get("tokens")));
    }

    static void assertBadRequest(ObjectNode body, String param, String messagePart) {
        OpenAiClient.Answer a = http.post("/v1/completions", body);
        assertEquals(400, a.status(), body + " -> " + a.json());
        assertEquals("invalid_request_error", a.json().get("error").get("type").asText());
        assertEquals(param, a.param(), a.json().toString());
        assertTrue(a.message().contains(messagePart), a.message());
    }

    @Test
    void completions_badFields_400NamingTheFieldAsTheRequestSpellsIt() {
        ObjectNode outside = greedy(3);
        outside.putArray("prompt").add(0).add(5000);
        assertBadRequest(outside, "prompt[1]", "outside the vocabulary");
        assertBadRequest(greedy(3).put("prompt", "The capital of France is"), "prompt",
                "no tokenizer; send the prompt as a list of token ids");
        OpenAiClient.Answer cold = http.post("/v1/completions", greedy(3).put("temperature", -1));
        assertEquals(400, cold.status());
        assertTrue(cold.message().startsWith("temperature must be a finite number >= 0"), cold.message());
        assertBadRequest(greedy(3).put("temperature", "hot"), "temperature", "must be a number");
        assertBadRequest(greedy(3).put("top_p", 0), "top_p", "top_p must be in (0, 1]");
        assertBadRequest(greedy(3).put("presence_penalty", 3), "presence_penalty", "[-2, 2]");
        assertBadRequest(greedy(0), "max_tokens", ">= 1");
        assertBadRequest(greedy(1000), "max_tokens", "exceeds the context of 256 tokens");
        assertBadRequest(greedy(3).put("logprobs", 21), "logprobs", "logprobs must be in [0, 20], got 21");
        ObjectNode manyStops = greedy(3);
        IntStream.range(0, 17).forEach(i -> manyStops.withArray("stop").add("s" + i));
        assertBadRequest(manyStops, "stop", "at most 16");
        assertBadRequest(greedy(3).put("n", 2), "n", "n must be 1");
        assertBadRequest(greedy(3).put("echo", true), "echo", "not supported");
        assertBadRequest(greedy(3).put("stream_options", "x"), "stream_options", "only allowed with stream");
        ObjectNode noPrompt = greedy(3);
        noPrompt.remove("prompt");
        assertBadRequest(noPrompt, "prompt", "prompt is required");
        ObjectNode batch = greedy(3);
        batch.putArray("prompt").add("a").add("b");
        assertBadRequest(batch, "prompt", "one prompt per request");

        OpenAiClient.Answer notJson = http.postRaw("/v1/completions", "{\"prompt\": [0, 1");
        assertEquals(400, notJson.status());
        assertTrue(notJson.message().contains("not valid JSON"), notJson.message());
        OpenAiClient.Answer otherModel = http.post("/v1/completions", greedy(3).put("model", "gpt-4o"));
        assertEquals(404, otherModel.status());
        assertEquals("model", otherModel.param());
        assertEquals("model_not_found", otherModel.json().get("error").get("code").asText());

        // the fixture has no chat template: chat is refused, pointing at completions
        ObjectNode chat = OpenAiClient.body();
        chat.putArray("messages").addObject().put("role", "user").put("content", "Hi");
        OpenAiClient.Answer noTemplate = http.post("/v1/chat/completions", chat);
        assertEquals(400, noTemplate.status());
        assertEquals("messages", noTemplate.param());
        assertTrue(noTemplate.message().contains("no chat template; use /v1/completions"), noTemplate.message());

        // and the router still serves
        assertEquals(200, http.post("/v1/completions", greedy(2)).status());
    }

    @Test
    void modelsHealthAndUnknownRoutes_answerInOpenAisShapes() {
        OpenAiClient.Answer models = http.get("/v1/models");
        assertEquals(200, models.status());
        assertEquals("list", models.json().get("object").asText());
        JsonNode m = models.json().get("data").get(0);
        assertEquals("f32", m.get("id").asText());
        assertEquals("model", m.get("object").asText());
        assertEquals(256, m.get("max_model_len").asInt());
        assertEquals(1024, m.get("vocab_size").asInt());
        assertEquals(200, http.get("/v1/models/f32").status());
        assertEquals(404, http.get("/v1/models/other").status());

        OpenAiClient.Answer health = http.get("/health");
        assertEquals(200, health.status());
        assertEquals("serving", health.json().get("status").asText());

        OpenAiClient.Answer unknown = http.get("/v1/embeddings");
        assertEquals(404, unknown.status());
        assertTrue(unknown.message().contains("POST /v1/chat/completions"), unknown.message());
        assertEquals(405, http.get("/v1/completions").status());
    }
}
