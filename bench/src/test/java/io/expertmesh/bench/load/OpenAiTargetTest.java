package io.expertmesh.bench.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ConnectException;
import java.net.http.HttpRequest;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import org.junit.jupiter.api.Test;

/** The target URL's forms, the request a benchmark sends, and the failures it tells apart. */
class OpenAiTargetTest {

    @Test
    void baseUri_acceptsHostPortWithOrWithoutV1_andRefusesOthers() {
        assertEquals("http://127.0.0.1:8000", OpenAiTarget.baseUri("http://127.0.0.1:8000").toString());
        assertEquals("http://127.0.0.1:8000", OpenAiTarget.baseUri("http://127.0.0.1:8000/v1/").toString());
        assertEquals("https://h:8443/api", OpenAiTarget.baseUri("HTTPS://h:8443/api/v1").toString());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OpenAiTarget.baseUri("ftp://h:1"))
                .getMessage().contains("needs --target http://HOST:PORT"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OpenAiTarget.baseUri("http://h:1/?x=1"))
                .getMessage().contains("without ?query"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OpenAiTarget.baseUri("http://h a"))
                .getMessage().contains("is not a URL"));
    }

    @Test
    void request_sendsTokenIdsGreedyIgnoreEosAndAsksForUsage() throws Exception {
        try (OpenAiTarget t = OpenAiTarget.create("http://127.0.0.1:8000", "m", null, null)) {
            HttpRequest r = t.request(new Workload.Item(new int[] {5, 6, 7}, 9, -1), true);
            assertEquals("http://127.0.0.1:8000/v1/completions", r.uri().toString());
            assertEquals("text/event-stream", r.headers().firstValue("Accept").orElseThrow());
            assertFalse(r.headers().firstValue("Authorization").isPresent());
            JsonNode body = new ObjectMapper().readTree(body(r));
            assertEquals("m", body.get("model").asText());
            assertEquals("[5,6,7]", body.get("prompt").toString());
            assertEquals(9, body.get("max_tokens").asInt());
            assertEquals(0, body.get("temperature").asInt());
            assertTrue(body.get("ignore_eos").asBoolean());
            assertTrue(body.get("stream").asBoolean());
            assertTrue(body.get("stream_options").get("include_usage").asBoolean());
        }
    }

    @Test
    void staleConnection_onlyWhenNoAnswerCameOnAnOpenConnection() {
        assertTrue(OpenAiTarget.staleConnection(new IOException("HTTP/1.1 header parser received no bytes")));
        assertTrue(OpenAiTarget.staleConnection(new IOException("EOF reached while reading")));
        assertFalse(OpenAiTarget.staleConnection(new ConnectException("Connection refused")));
        assertFalse(OpenAiTarget.staleConnection(new HttpTimeoutException("request timed out")));
        assertFalse(OpenAiTarget.staleConnection(new IOException("Connection reset")));
    }

    @Test
    void errorMessage_readsOpenAisShape_orShowsTheBody() {
        assertEquals("unknown bearer token", OpenAiTarget.errorMessage(
                "{\"error\":{\"message\":\"unknown bearer token\",\"type\":\"authentication_error\"}}"));
        assertEquals("Invalid API Key", OpenAiTarget.errorMessage("{\"error\":\"Invalid API Key\"}"));
        assertEquals("Not Found", OpenAiTarget.errorMessage("Not Found\n"));
        assertEquals("(no body)", OpenAiTarget.errorMessage(""));
    }

    /** The bytes of a request's body. */
    static String body(HttpRequest r) throws Exception {
        CompletableFuture<String> text = new CompletableFuture<>();
        r.bodyPublisher().orElseThrow().subscribe(new Flow.Subscriber<>() {
            private final StringBuilder sb = new StringBuilder();

            @Override
            public void onSubscribe(Flow.Subscription s) {
                s.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(ByteBuffer b) {
                sb.append(StandardCharsets.UTF_8.decode(b));
            }

            @Override
            public void onError(Throwable e) {
                text.completeExceptionally(e);
            }

            @Override
            public void onComplete() {
                text.complete(sb.toString());
            }
        });
        return text.get();
    }
}
