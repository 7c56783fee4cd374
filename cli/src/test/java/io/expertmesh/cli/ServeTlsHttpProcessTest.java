package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code serve --tls-cert --tls-key --auth-tokens --http-port} as an OS process: the HTTP API speaks HTTPS with the
 * gRPC port's certificate and answers a completion to a client with a bearer token (the fixture's reference greedy
 * tokens); a request without the token gets 401, and plain HTTP to the port gets no answer. {@code bench --backend
 * openai} runs against it over HTTPS too.
 */
class ServeTlsHttpProcessTest {
    static final String TOKEN = "serve-tls-http-token-0123456789abcdef";
    static final Pattern HTTP_PORT = Pattern.compile("^expertmesh OpenAI-compatible HTTP API on port (\\d+)");
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void serve_tlsAndTokens_onTheHttpPort() throws Exception {
        TestCa ca = TestCa.create(dir, "serve");
        TestCa.Issued cert = ca.server("router");
        Path tokens = Files.write(dir.resolve("tokens"), List.of(TOKEN + " generate"));
        Path tokenFile = Files.write(dir.resolve("my-token"), List.of(TOKEN));
        try (ChildProcesses children = new ChildProcesses()) {
            ChildProcesses.Child router = children.start("router", List.of("serve", "--model",
                    RunCommandTest.FIXTURE.toString(), "--port", "0", "--http-port", "0", "--threads", "1",
                    "--kv-cache-mb", "16", "--kv-store", "none", "--tls-cert", cert.cert().toString(), "--tls-key",
                    cert.key().toString(), "--auth-tokens", tokens.toString()));
            int port = Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> httpPort(router.output()),
                    p -> p > 0);
            HttpClient https = HttpClient.newBuilder()
                    .sslContext(TlsCredentials.clientSslContext(TlsFiles.client(ca.certFile())))
                    .connectTimeout(Duration.ofSeconds(10)).build();
            String body = "{\"prompt\":[0,818,726,297,56,207,375,667],\"max_tokens\":3,\"temperature\":0,"
                    + "\"ignore_eos\":true,\"logprobs\":0}";

            HttpResponse<String> ok = https.send(post("https", port, body).header("Authorization", "Bearer " + TOKEN)
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, ok.statusCode(), ok.body());
            JsonNode answer = JSON.readTree(ok.body());
            List<String> tokensOut = new ArrayList<>();
            answer.get("choices").get(0).get("logprobs").get("tokens").forEach(t -> tokensOut.add(t.asText()));
            assertEquals(List.of("token_id:765", "token_id:164", "token_id:924"), tokensOut, "reference greedy");
            assertEquals(3, answer.get("usage").get("completion_tokens").asInt());

            HttpResponse<String> noToken = https.send(post("https", port, body).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(401, noToken.statusCode(), noToken.body());
            assertEquals("Bearer", noToken.headers().firstValue("WWW-Authenticate").orElse(""));
            assertEquals("invalid_api_key", JSON.readTree(noToken.body()).get("error").get("code").asText());

            HttpClient plain = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
            assertThrows(IOException.class, () -> plain.send(post("http", port, body)
                    .header("Authorization", "Bearer " + TOKEN).timeout(Duration.ofSeconds(30)).build(),
                    HttpResponse.BodyHandlers.ofString()), "plain HTTP to the TLS port gets no answer");

            RunCommandTest.Run bench = RunCommandTest.run("bench", "--backend", "openai", "--target",
                    "https://localhost:" + port, "--tls-ca", ca.certFile().toString(), "--token-file",
                    tokenFile.toString(), "--num-requests", "3", "--max-concurrency", "2", "--input-len", "fixed:8",
                    "--output-len", "fixed:4", "--result-json", dir.resolve("bench.json").toString());
            assertEquals(0, bench.exit(), bench.err());
            JsonNode run = JSON.readTree(dir.resolve("bench.json").toFile()).get("runs").get(0);
            assertEquals(3, run.get("completed").asInt(), run.toString());
            assertEquals(12, run.get("total_output_tokens").asInt(), run.toString());
        }
    }

    static HttpRequest.Builder post(String scheme, int port, String body) {
        return HttpRequest.newBuilder(URI.create(scheme + "://localhost:" + port + "/v1/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
    }

    static int httpPort(List<String> output) {
        for (String line : output) {
            Matcher m = HTTP_PORT.matcher(line);
            if (m.find()) {
                return Integer.parseInt(m.group(1));
            }
        }
        return -1;
    }
}
