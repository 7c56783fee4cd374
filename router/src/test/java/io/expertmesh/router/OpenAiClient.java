package io.expertmesh.router;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLContext;

/** The HTTP API seen from java.net.http over a real socket: JSON in, JSON or server-sent events out. */
final class OpenAiClient {
    static final ObjectMapper JSON = new ObjectMapper();

    private final HttpClient http;
    private final String base;
    private final String token;

    OpenAiClient(int port) {
        this(HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build(), "http://127.0.0.1:" + port, null);
    }

    /** Over TLS to {@code localhost} (the test certificates' name), trusting {@code ssl}'s roots. */
    static OpenAiClient tls(int port, SSLContext ssl, String token) {
        return new OpenAiClient(HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).sslContext(ssl).build(),
                "https://localhost:" + port, token);
    }

    OpenAiClient(HttpClient http, String base, String token) {
        this.http = http;
        this.base = base;
        this.token = token;
    }

    OpenAiClient withToken(String t) {
        return new OpenAiClient(http, base, t);
    }

    static ObjectNode body() {
        return JSON.createObjectNode();
    }

    /** A status and its parsed JSON body. */
    record Answer(int status, JsonNode json) {
        /** OpenAI's error.param. */
        String param() {
            return json.path("error").path("param").asText(null);
        }

        String message() {
            return json.path("error").path("message").asText();
        }
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60));
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        return b;
    }

    Answer get(String path) {
        return send(request(path).GET().build());
    }

    Answer post(String path, JsonNode body) {
        return postRaw(path, body.toString());
    }

    Answer postRaw(String path, String body) {
        return send(request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build());
    }

    private Answer send(HttpRequest r) {
        try {
            HttpResponse<String> resp = http.send(r, HttpResponse.BodyHandlers.ofString());
            return new Answer(resp.statusCode(), JSON.readTree(resp.body()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** A stream as it arrives: the response and its body, to read event by event or to close early. */
    record Stream(HttpResponse<InputStream> response, BufferedReader reader) implements AutoCloseable {
        /** The next event's data, or null at the end of the body. */
        String next() throws IOException {
            String line;
            while ((line = reader.readLine()) != null) {
                if (line.startsWith("data: ")) {
                    return line.substring("data: ".length());
                }
            }
            return null;
        }

        /** Every remaining event's data, up to and including [DONE]. */
        List<String> rest() throws IOException {
            List<String> out = new ArrayList<>();
            String d;
            while ((d = next()) != null) {
                out.add(d);
            }
            return out;
        }

        /** Closes the connection: the client going away mid-stream. */
        @Override
        public void close() throws IOException {
            reader.close();
        }
    }

    Stream open(String path, JsonNode body) throws IOException, InterruptedException {
        HttpResponse<InputStream> resp = http.send(request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        return new Stream(resp, new BufferedReader(new InputStreamReader(resp.body(), StandardCharsets.UTF_8)));
    }

    /** A whole stream's events as JSON; the last raw event must be [DONE]. */
    List<JsonNode> stream(String path, JsonNode body) throws IOException, InterruptedException {
        try (Stream s = open(path, body)) {
            if (s.response().statusCode() != 200) {
                throw new AssertionError("stream refused: " + s.response().statusCode() + " " + s.rest());
            }
            if (!s.response().headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream")) {
                throw new AssertionError("not an event stream: " + s.response().headers());
            }
            List<String> raw = s.rest();
            if (raw.isEmpty() || !raw.getLast().equals("[DONE]")) {
                throw new AssertionError("the stream does not end with [DONE]: " + raw);
            }
            List<JsonNode> out = new ArrayList<>();
            for (String d : raw.subList(0, raw.size() - 1)) {
                out.add(JSON.readTree(d));
            }
            return out;
        }
    }

    /** {@code token_id:N} logprob tokens (return_tokens_as_token_ids, or a model without tokenizer) as ids. */
    static List<Integer> ids(JsonNode tokens) {
        List<Integer> out = new ArrayList<>();
        for (JsonNode t : tokens) {
            String s = t.isObject() ? t.get("token").asText() : t.asText();
            if (!s.startsWith("token_id:")) {
                throw new AssertionError("not a token_id:N token: " + s);
            }
            out.add(Integer.parseInt(s.substring("token_id:".length())));
        }
        return out;
    }
}
