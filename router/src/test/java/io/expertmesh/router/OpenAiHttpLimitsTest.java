package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.router.engine.EngineConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading and draining answer 503, a full queue 429: the gRPC path's refusals in HTTP's terms. */
class OpenAiHttpLimitsTest {
    @TempDir
    static Path tmp;

    static ObjectNode longStream(int maxTokens) {
        ObjectNode b = OpenAiClient.body().put("max_tokens", maxTokens).put("ignore_eos", true).put("stream", true);
        IntStream.of(0, 818, 726, 297).forEach(b.putArray("prompt")::add);
        return b;
    }

    @Test
    void whileLoading_generationAndModelsAre503AndHealthSaysLoading() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        RouterConfig config = new RouterConfig(0, TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 8, 8, true),
                1024, Duration.ofSeconds(1));
        try (RouterServer server = new RouterServer(config).httpPort(0).start(() -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return TestModels.load(TestModels.FIXTURE);
        })) {
            OpenAiClient http = new OpenAiClient(server.httpPort());
            OpenAiClient.Answer a = http.post("/v1/completions", longStream(2).put("stream", false));
            assertEquals(503, a.status());
            assertEquals("loading", a.json().get("error").get("code").asText());
            assertEquals(503, http.get("/v1/models").status());
            OpenAiClient.Answer health = http.get("/health");
            assertEquals(503, health.status());
            assertEquals("loading", health.json().get("status").asText());

            release.countDown();
            server.awaitLoaded();
            assertEquals(200, http.get("/health").status());
            assertEquals(200, http.post("/v1/completions", longStream(2).put("stream", false)).status());
        }
    }

    @Test
    void queueFull_is429() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        // max running 1, max waiting 1: one runs, one waits, the third is refused
        RouterConfig config = new RouterConfig(0, model, new EngineConfig(16, 64L << 20, 256, 1, 1, true), 4096,
                Duration.ofSeconds(1));
        try (RouterServer server = new RouterServer(config).httpPort(0).start(() -> TestModels.load(model))) {
            server.awaitLoaded();
            OpenAiClient http = new OpenAiClient(server.httpPort());
            try (OpenAiClient.Stream running = http.open("/v1/completions", longStream(3000))) {
                running.next();
                try (OpenAiClient.Stream waiting = http.open("/v1/completions", longStream(2))) {
                    assertEquals(200, waiting.response().statusCode());
                    OpenAiClient.Answer refused = http.post("/v1/completions", longStream(2).put("stream", false));
                    assertEquals(429, refused.status(), refused.json().toString());
                    assertEquals("rate_limit_error", refused.json().get("error").get("type").asText());
                    assertTrue(refused.message().contains("queue is full"), refused.message());
                }
            }
            // both closed: the router serves again
            awaitIdle(server);
            assertEquals(200, http.post("/v1/completions", longStream(2).put("stream", false)).status());
        }
    }

    @Test
    void draining_newRequestsAre503RunningStreamContinues() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        RouterConfig config = new RouterConfig(0, model, new EngineConfig(16, 64L << 20, 256, 4, 4, true), 4096,
                Duration.ofSeconds(60));
        try (RouterServer server = new RouterServer(config).httpPort(0).start(() -> TestModels.load(model))) {
            server.awaitLoaded();
            OpenAiClient http = new OpenAiClient(server.httpPort());
            Thread drainer;
            try (OpenAiClient.Stream running = http.open("/v1/completions", longStream(3000))) {
                running.next();
                drainer = Thread.ofPlatform().start(() -> {
                    try {
                        server.drain();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                });
                for (int i = 0; i < 500 && !server.engine().status().draining(); i++) {
                    Thread.sleep(2);
                }
                OpenAiClient.Answer refused = http.post("/v1/completions", longStream(2).put("stream", false));
                assertEquals(503, refused.status(), refused.json().toString());
                assertEquals("draining", refused.json().get("error").get("code").asText());
                OpenAiClient.Answer health = http.get("/health");
                assertEquals(503, health.status());
                assertEquals("draining", health.json().get("status").asText());
                // the running stream still gets tokens
                String event = running.next();
                JsonNode chunk = OpenAiClient.JSON.readTree(event);
                assertTrue(chunk.get("choices").get(0).get("finish_reason").isNull(), event);
            }
            // closing the running stream cancels it, so the drain ends long before its grace
            drainer.join(30_000);
            assertTrue(!drainer.isAlive(), "the drain finished once the last stream was gone");
        }
    }

    @Test
    void drainGraceOver_runningStreamEndsWithAbortAndDone() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        RouterConfig config = new RouterConfig(0, model, new EngineConfig(16, 64L << 20, 256, 4, 4, true), 4096,
                Duration.ZERO);
        try (RouterServer server = new RouterServer(config).httpPort(0).start(() -> TestModels.load(model))) {
            server.awaitLoaded();
            OpenAiClient http = new OpenAiClient(server.httpPort());
            try (OpenAiClient.Stream running = http.open("/v1/completions", longStream(3000))) {
                running.next();
                server.drain(); // no grace: the running sequence is cancelled, its stream closed properly
                java.util.List<String> rest = running.rest();
                assertEquals("[DONE]", rest.getLast(), rest.toString());
                JsonNode last = OpenAiClient.JSON.readTree(rest.get(rest.size() - 2));
                assertEquals("abort", last.get("choices").get(0).get("finish_reason").asText(), last.toString());
            }
        }
    }

    static void awaitIdle(RouterServer server) throws InterruptedException {
        for (int i = 0; i < 1000 && (server.engine().status().running() > 0 || server.engine().status().waiting() > 0);
             i++) {
            Thread.sleep(10);
        }
    }
}
