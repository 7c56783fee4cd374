package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.proto.inference.v1.ChatMessage;
import io.expertmesh.proto.inference.v1.ChatPrompt;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.Usage;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.engine.EngineStatus;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code /v1/chat/completions} (and text prompts on {@code /v1/completions}) on a model with the real tokenizer
 * and chat template, next to gRPC on the same router: same text, logprobs in the chat form, stop strings, the
 * unsupported features refused, and a client that closes its stream freeing its sequence.
 */
class OpenAiChatTest {
    static final String SYSTEM = "You are a terse assistant.";
    static final String USER = "Write a long story about the sea, the wind, the harbour and the boats that sail "
            + "out at dawn and come back at night with the catch of the day.";

    @TempDir
    static Path tmp;
    static RouterServer server;
    static ManagedChannel channel;
    static OpenAiClient http;
    static String modelId;

    @BeforeAll
    static void start() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        modelId = model.getFileName().toString();
        RouterConfig config = new RouterConfig(0, model, new EngineConfig(16, 64L << 20, 256, 8, 8, true), 4096,
                Duration.ofSeconds(1));
        server = new RouterServer(config).httpPort(0).start(() -> TestModels.load(model));
        server.awaitLoaded();
        channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
        http = new OpenAiClient(server.httpPort());
    }

    @AfterAll
    static void stop() throws Exception {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        server.close();
    }

    static ObjectNode chat(int maxTokens) {
        ObjectNode b = OpenAiClient.body().put("model", modelId).put("max_completion_tokens", maxTokens)
                .put("temperature", 0).put("ignore_eos", true);
        ArrayNode messages = b.putArray("messages");
        messages.addObject().put("role", "system").put("content", SYSTEM);
        messages.addObject().put("role", "user").put("content", USER);
        return b;
    }

    record GrpcResult(List<GeneratedToken> tokens, Usage usage, String stopString) {
        String text() {
            StringBuilder sb = new StringBuilder();
            tokens.forEach(t -> sb.append(t.getText()));
            return sb.toString();
        }
    }

    static GrpcResult grpc(GenerateRequest.Builder request) {
        Iterator<GenerateResponse> it = InferenceServiceGrpc.newBlockingStub(channel)
                .withDeadlineAfter(60, TimeUnit.SECONDS).generate(request
                        .setSampling(SamplingParams.newBuilder().setTemperature(0)).setIgnoreEos(true).build());
        List<GeneratedToken> tokens = new ArrayList<>();
        Usage usage = null;
        String stop = null;
        while (it.hasNext()) {
            GenerateResponse r = it.next();
            tokens.addAll(r.getTokensList());
            if (r.hasFinished()) {
                usage = r.getFinished().getUsage();
                stop = r.getFinished().getStopString();
            }
        }
        return new GrpcResult(tokens, usage, stop);
    }

    static GenerateRequest.Builder grpcChat(int maxTokens) {
        return GenerateRequest.newBuilder().setMaxTokens(maxTokens).setChat(ChatPrompt.newBuilder()
                .addMessages(ChatMessage.newBuilder().setRole("system").setContent(SYSTEM))
                .addMessages(ChatMessage.newBuilder().setRole("user").setContent(USER)));
    }

    @Test
    void chat_greedy_sameTextLogprobsAndUsageAsGrpcChat() {
        GrpcResult viaGrpc = grpc(grpcChat(12).setLogprobs(true).setTopLogprobs(3));
        OpenAiClient.Answer a = http.post("/v1/chat/completions", chat(12).put("logprobs", true)
                .put("top_logprobs", 3));

        assertEquals(200, a.status(), a.json().toString());
        JsonNode j = a.json();
        assertEquals("chat.completion", j.get("object").asText());
        assertTrue(j.get("id").asText().startsWith("chatcmpl-"));
        JsonNode choice = j.get("choices").get(0);
        assertEquals("assistant", choice.get("message").get("role").asText());
        assertEquals(viaGrpc.text(), choice.get("message").get("content").asText());
        assertFalse(viaGrpc.text().isEmpty());
        assertEquals("length", choice.get("finish_reason").asText());

        JsonNode content = choice.get("logprobs").get("content");
        assertEquals(12, content.size());
        for (int i = 0; i < 12; i++) {
            GeneratedToken g = viaGrpc.tokens().get(i);
            JsonNode entry = content.get(i);
            assertEquals(g.getLogprob(), entry.get("logprob").floatValue(), 1e-6);
            assertEquals(3, entry.get("top_logprobs").size());
            assertTrue(entry.get("bytes").isArray());
            assertEquals(g.getTopLogprobs(0).getLogprob(), entry.get("top_logprobs").get(0).get("logprob").floatValue(),
                    1e-6);
        }
        JsonNode usage = j.get("usage");
        assertEquals(viaGrpc.usage().getPromptTokens(), usage.get("prompt_tokens").asInt());
        assertEquals(12, usage.get("completion_tokens").asInt());
        // the same chat was just computed over gRPC: its full prompt blocks are prefix-cache hits
        assertTrue(usage.get("prompt_tokens_details").get("cached_tokens").asInt() > 0, usage.toString());
    }

    @Test
    void chat_tokensAsIds_equalGrpcTokenIds() {
        GrpcResult viaGrpc = grpc(grpcChat(6));
        OpenAiClient.Answer a = http.post("/v1/chat/completions", chat(6).put("logprobs", true)
                .put("return_tokens_as_token_ids", true));
        assertEquals(viaGrpc.tokens().stream().map(GeneratedToken::getTokenId).toList(),
                OpenAiClient.ids(a.json().get("choices").get(0).get("logprobs").get("content")));
    }

    @Test
    void chat_stream_roleFirstThenDeltasThatConcatenateToTheWholeAnswer() throws Exception {
        String whole = http.post("/v1/chat/completions", chat(10)).json().get("choices").get(0).get("message")
                .get("content").asText();
        ObjectNode body = chat(10).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        List<JsonNode> events = http.stream("/v1/chat/completions", body);

        JsonNode first = events.getFirst().get("choices").get(0);
        assertEquals("assistant", first.get("delta").get("role").asText());
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (JsonNode e : events.subList(0, events.size() - 1)) {
            assertEquals("chat.completion.chunk", e.get("object").asText());
            JsonNode c = e.get("choices").get(0);
            text.append(c.get("delta").path("content").asText(""));
            if (!c.get("finish_reason").isNull()) {
                finish = c.get("finish_reason").asText();
            }
        }
        assertEquals(whole, text.toString());
        assertEquals("length", finish);
        JsonNode usage = events.getLast().get("usage");
        assertEquals(10, usage.get("completion_tokens").asInt());
        assertTrue(usage.get("prompt_tokens_details").get("cached_tokens").asInt() > 0, usage.toString());
    }

    @Test
    void completions_stopString_endsBeforeItWithStopReason_wholeAndStreamed() throws Exception {
        GrpcResult free = grpc(GenerateRequest.newBuilder().setText("The harbour at dawn").setMaxTokens(24));
        String text = free.text();
        // a stop string from the middle of the greedy text: the answer must end right before its first match
        String stop = null;
        for (int at = text.length() / 2; at + 3 <= text.length() && stop == null; at++) {
            String s = text.substring(at, at + 3);
            if (!s.isBlank() && text.indexOf(s) > 0) {
                stop = s;
            }
        }
        assertTrue(stop != null, "no usable stop string in " + text);
        String expected = text.substring(0, text.indexOf(stop));

        ObjectNode body = OpenAiClient.body().put("prompt", "The harbour at dawn").put("max_tokens", 24)
                .put("temperature", 0).put("ignore_eos", true).put("stop", stop);
        OpenAiClient.Answer a = http.post("/v1/completions", body);
        JsonNode choice = a.json().get("choices").get(0);
        assertEquals(expected, choice.get("text").asText());
        assertEquals("stop", choice.get("finish_reason").asText());
        assertEquals(stop, choice.get("stop_reason").asText());

        StringBuilder streamed = new StringBuilder();
        String finish = null;
        for (JsonNode e : http.stream("/v1/completions", body.put("stream", true))) {
            JsonNode c = e.get("choices").get(0);
            streamed.append(c.get("text").asText());
            finish = c.get("finish_reason").isNull() ? finish : c.get("finish_reason").asText();
        }
        assertEquals(expected, streamed.toString());
        assertEquals("stop", finish);
    }

    static void assertBadChat(ObjectNode body, String param, String messagePart) {
        OpenAiClient.Answer a = http.post("/v1/chat/completions", body);
        assertEquals(400, a.status(), body + " -> " + a.json());
        JsonNode error = a.json().get("error");
        assertEquals("invalid_request_error", error.get("type").asText());
        assertEquals(param, a.param(), a.json().toString());
        assertTrue(a.message().contains(messagePart), a.message());
        assertTrue(error.has("code"), "OpenAI's error object has a code (maybe null)");
    }

    @Test
    void chat_unsupportedOrBadFields_400WithAClearMessage() {
        assertBadChat(chat(3).put("n", 3), "n", "n must be 1");
        ObjectNode tools = chat(3);
        tools.putArray("tools").addObject().put("type", "function").putObject("function").put("name", "f");
        assertBadChat(tools, "tools", "tools (function calling) are not supported");
        ObjectNode format = chat(3);
        format.putObject("response_format").put("type", "json_object");
        assertBadChat(format, "response_format", "'json_object' is not supported");
        assertBadChat(chat(3).put("tool_choice", "auto"), "tool_choice", "not supported");
        assertBadChat(chat(3).put("top_logprobs", 2), "top_logprobs", "needs logprobs: true");
        ObjectNode image = chat(3);
        ((ObjectNode) image.withArray("messages").get(1)).putArray("content").addObject().put("type", "image_url");
        assertBadChat(image, "messages[1].content[0].type", "'image_url' are not supported");
        ObjectNode wizard = chat(3);
        ((ObjectNode) wizard.withArray("messages").get(0)).put("role", "wizard");
        assertBadChat(wizard, "messages[0].role", "wizard");
        ObjectNode none = chat(3);
        none.putArray("messages");
        assertBadChat(none, "messages", "no messages");
        assertBadChat(chat(5000), "max_completion_tokens", "exceeds the context");

        // {"type": "text"} is the default answer, developer is OpenAI's new name for system, text parts join
        ObjectNode fine = chat(2);
        fine.putObject("response_format").put("type", "text");
        ((ObjectNode) fine.withArray("messages").get(0)).put("role", "developer");
        ((ObjectNode) fine.withArray("messages").get(1)).putArray("content").addObject().put("type", "text")
                .put("text", "Hello");
        assertEquals(200, http.post("/v1/chat/completions", fine).status());
    }

    @Test
    void chat_clientClosesStream_sequenceCancelledAndFreedWithinAStep() throws Exception {
        EngineStatus before = server.engine().status();
        long cancelledBefore = before.finished().getOrDefault("cancelled", 0L);
        int totalBlocks = before.kv().totalBlocks();
        ObjectNode body = chat(3000).put("stream", true);
        try (OpenAiClient.Stream s = http.open("/v1/chat/completions", body)) {
            assertEquals(200, s.response().statusCode());
            s.next(); // the role
            s.next(); // a first token: the sequence runs
            assertEquals(1, server.engine().status().running());
        }
        // closing the stream closes the connection; the router cancels the sequence and frees its blocks
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        EngineStatus st = server.engine().status();
        while (System.nanoTime() < deadline && (st.running() > 0
                || st.finished().getOrDefault("cancelled", 0L) == cancelledBefore)) {
            Thread.sleep(5);
            st = server.engine().status();
        }
        assertEquals(0, st.running());
        assertEquals(cancelledBefore + 1, st.finished().getOrDefault("cancelled", 0L));
        assertTrue(st.generatedTokens() - before.generatedTokens() < 3000, "cut short, not run to the end");
        assertEquals(totalBlocks, st.kv().freeBlocks(), "the cancelled sequence's blocks are free (or cached)");
        assertEquals(200, http.post("/v1/chat/completions", chat(2)).status(), "still serving");
    }
}
