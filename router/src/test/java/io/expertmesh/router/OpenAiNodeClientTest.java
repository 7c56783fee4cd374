package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.engine.EngineStatus;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The official OpenAI Node client ({@code openai} on npm, pinned in {@code src/test/node/package.json}) against the
 * router: chat whole and streamed, completions with logprobs, an abandoned stream, and its error classes.
 * Skipped, saying why, where node or the installed package is missing ({@code .ci/run} installs it with
 * {@code npm ci}, best effort).
 */
class OpenAiNodeClientTest {
    static final Path NODE_DIR = Path.of("src/test/node");

    @TempDir
    Path tmp;

    static boolean nodeRuns() {
        try {
            Process p = new ProcessBuilder("node", "--version").redirectErrorStream(true).start();
            return p.waitFor(20, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    @Test
    void officialNodeClient_chatCompletionsStreamsAndErrors_understood() throws Exception {
        assumeTrue(Files.isDirectory(NODE_DIR.resolve("node_modules/openai")), "skipped: the openai npm package is "
                + "not installed; run 'npm ci' in router/src/test/node (.ci/run does, where npm is available)");
        assumeTrue(nodeRuns(), "skipped: no 'node' on the PATH");

        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        String modelId = model.getFileName().toString();
        RouterConfig config = new RouterConfig(0, model, new EngineConfig(16, 64L << 20, 256, 8, 8, true), 4096,
                Duration.ofSeconds(1));
        try (RouterServer server = new RouterServer(config).httpPort(0).start(() -> TestModels.load(model))) {
            server.awaitLoaded();
            ProcessBuilder pb = new ProcessBuilder("node", "openai-client.mjs").directory(NODE_DIR.toFile())
                    .redirectOutput(tmp.resolve("out").toFile()).redirectError(tmp.resolve("err").toFile());
            pb.environment().put("EXPERTMESH_BASE_URL", "http://127.0.0.1:" + server.httpPort() + "/v1");
            pb.environment().put("EXPERTMESH_MODEL", modelId);
            Process node = pb.start();
            boolean ended = node.waitFor(180, TimeUnit.SECONDS);
            if (!ended) {
                node.destroyForcibly();
            }
            String err = Files.readString(tmp.resolve("err"), StandardCharsets.UTF_8);
            assertTrue(ended && node.exitValue() == 0, "the node client failed: " + err);
            String[] lines = Files.readString(tmp.resolve("out"), StandardCharsets.UTF_8).strip().split("\n");
            JsonNode out = OpenAiClient.JSON.readTree(lines[lines.length - 1]);

            // what the library parsed equals what the router answers a plain HTTP client
            ObjectNode same = OpenAiClient.body().put("model", modelId).put("max_completion_tokens", 8)
                    .put("temperature", 0).put("ignore_eos", true);
            same.putArray("messages").add(OpenAiClient.body().put("role", "system")
                    .put("content", "You are a terse assistant.")).add(OpenAiClient.body().put("role", "user")
                    .put("content", "Say something about the sea."));
            String expected = new OpenAiClient(server.httpPort()).post("/v1/chat/completions", same).json()
                    .get("choices").get(0).get("message").get("content").asText();

            JsonNode chat = out.get("chat");
            assertEquals(expected, chat.get("content").asText(), out.toString());
            assertEquals("length", chat.get("finish_reason").asText());
            assertEquals(8, chat.get("logprob_tokens").asInt());
            assertEquals(2, chat.get("top_logprobs").asInt());
            assertEquals(8, chat.get("usage").get("completion_tokens").asInt());
            assertTrue(chat.get("usage").get("prompt_tokens_details").has("cached_tokens"));

            JsonNode stream = out.get("chat_stream");
            assertEquals(expected, stream.get("content").asText());
            assertEquals("length", stream.get("finish_reason").asText());
            assertEquals(8, stream.get("usage").get("completion_tokens").asInt());

            JsonNode completion = out.get("completion");
            assertEquals(5, completion.get("tokens").asInt());
            assertEquals(5, completion.get("usage").get("completion_tokens").asInt());

            assertEquals(2, out.get("aborted_after").asInt());
            EngineStatus st = server.engine().status();
            for (int i = 0; i < 1000 && st.running() > 0; i++) {
                Thread.sleep(10);
                st = server.engine().status();
            }
            assertEquals(0, st.running());
            assertEquals(1L, st.finished().getOrDefault("cancelled", 0L), "the abandoned stream was cancelled");

            assertEquals(400, out.get("n2").get("status").asInt());
            assertEquals("BadRequestError", out.get("n2").get("class").asText());
            assertEquals("n", out.get("n2").get("param").asText());
            assertEquals(404, out.get("other_model").get("status").asInt());
            assertEquals("NotFoundError", out.get("other_model").get("class").asText());
        }
    }
}
