package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.defaultmodel.DefaultModel;
import io.expertmesh.router.RouterConfig;
import io.expertmesh.router.RouterServer;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bench --backend openai} against ExpertMesh's own OpenAI-compatible HTTP API: a plain router on the default
 * model (which has a tokenizer, so its stream carries text), and a TLS router with bearer tokens on the fixture
 * (no tokenizer: its stream carries no text, so every token is counted from {@code usage}).
 */
class BenchOpenAiTest {
    static final String TOKEN = "bench-openai-token-0123456789abcdef";
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static RouterServer plain;
    static RouterServer secure;
    static RouterServer mutual;
    static TestCa.Issued client;
    static TestCa ca;
    static Path tokenFile;

    @BeforeAll
    static void serve() throws Exception {
        Path defaultModel = DefaultModel.ensure(dir.resolve("cache"));
        plain = new RouterServer(new RouterConfig(0, defaultModel, new EngineConfig(16, 16L << 20, 256, 16, 16,
                true), 4096, Duration.ofSeconds(1))).httpPort(0).start(() -> open(defaultModel));
        ca = TestCa.create(dir, "bench");
        TestCa.Issued cert = ca.server("router");
        Path tokens = Files.write(dir.resolve("tokens"), List.of(TOKEN + " generate"));
        tokenFile = Files.write(dir.resolve("my-token"), List.of(TOKEN));
        Path fixture = RunCommandTest.FIXTURE;
        secure = new RouterServer(new RouterConfig(0, fixture, new EngineConfig(16, 16L << 20, 256, 16, 16,
                true), 4096, Duration.ofSeconds(1)), new ServerSecurity(TlsFiles.server(cert.cert(), cert.key()),
                BearerTokens.load(tokens), null)).httpPort(0).start(() -> open(fixture));
        client = ca.client("bench");
        mutual = new RouterServer(new RouterConfig(0, fixture, new EngineConfig(16, 16L << 20, 256, 16, 16,
                true), 4096, Duration.ofSeconds(1)), new ServerSecurity(TlsFiles.mutualServer(cert.cert(), cert.key(),
                ca.certFile()), null, null)).httpPort(0).start(() -> open(fixture));
        plain.awaitLoaded();
        secure.awaitLoaded();
        mutual.awaitLoaded();
    }

    static LoadedModel open(Path model) {
        try {
            return LoadedModel.open(model, new VectorKernels(ComputePool.create(2)), (a, b) -> { });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @AfterAll
    static void stop() {
        plain.close();
        secure.close();
        mutual.close();
    }

    static String url(RouterServer server, String scheme) {
        return scheme + "://127.0.0.1:" + server.httpPort();
    }

    @Test
    void bench_closedLoopOverHttp_countsEveryRequestAndToken_andWritesTheReports() throws Exception {
        Path json = dir.resolve("openai.json");
        Path html = dir.resolve("openai.html");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--backend", "openai", "--target", url(plain, "http"),
                "--num-requests", "12", "--max-concurrency", "4", "--input-len", "uniform:8:24", "--output-len",
                "fixed:8", "--warmup", "2", "--result-json", json.toString(), "--report-html", html.toString());
        assertEquals(0, run.exit(), run.err());
        assertTrue(run.out().contains("Successful requests:"), run.out());
        JsonNode doc = JSON.readTree(json.toFile());
        JsonNode settings = doc.get("settings");
        assertEquals("openai", settings.get("backend").asText());
        assertEquals(DefaultModel.name(), settings.get("model_id").asText(), "the model /v1/models lists");
        assertEquals("8192", settings.get("vocab_size").asText(), "from /v1/models");
        JsonNode r = doc.get("runs").get(0);
        assertEquals(12, r.get("completed").asInt(), r.toString());
        assertEquals(0, r.get("failed").asInt());
        assertEquals(12, r.get("requests").size());
        assertEquals(96, r.get("total_output_tokens").asInt(), "8 tokens each, from usage");
        assertEquals(84, r.get("count_itl").asInt(), "7 ITLs per request");
        long input = r.get("total_input_tokens").asLong();
        assertTrue(input >= 12 * 8 && input <= 12 * 24, "prompt tokens from usage: " + input);
        double ttft = r.get("mean_ttft_ms").asDouble();
        double e2e = r.get("mean_e2el_ms").asDouble();
        assertTrue(ttft > 0 && ttft <= e2e, "ttft " + ttft + " e2e " + e2e);
        for (JsonNode q : r.get("requests")) {
            assertEquals(8, q.get("output_tokens").asInt(), q.toString());
        }
        assertTrue(Files.readString(html).contains("TTFT histogram"));
    }

    @Test
    void bench_drainTimeout_cancelsRunningStreams() throws Exception {
        // 4,000 tokens each cannot finish in the 0.3 s the run allows: the runner closes the streams
        Path json = dir.resolve("cancel.json");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--backend", "openai", "--target", url(plain, "http"),
                "--num-requests", "3", "--max-concurrency", "3", "--input-len", "fixed:8", "--output-len",
                "fixed:4000", "--duration", "0.2", "--drain-timeout", "0.1", "--result-json", json.toString());
        assertEquals(BenchCommand.FAILED, run.exit(), run.err());
        JsonNode r = JSON.readTree(json.toFile()).get("runs").get(0);
        assertEquals(0, r.get("completed").asInt(), r.toString());
        assertEquals(3, r.get("errors").get("CANCELLED").asInt(), r.toString());
    }

    @Test
    void bench_overTlsWithToken_countsTokensFromUsageWhenTheStreamHasNoText() throws Exception {
        Path json = dir.resolve("tls.json");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--backend", "openai", "--target", url(secure, "https"),
                "--tls-ca", ca.certFile().toString(), "--token-file", tokenFile.toString(), "--model", "f32",
                "--num-requests", "4", "--max-concurrency", "2", "--input-len", "fixed:8", "--output-len", "fixed:5",
                "--result-json", json.toString());
        assertEquals(0, run.exit(), run.err());
        JsonNode r = JSON.readTree(json.toFile()).get("runs").get(0);
        assertEquals(4, r.get("completed").asInt(), r.toString());
        assertEquals(20, r.get("total_output_tokens").asInt(), r.toString());
        assertEquals(32, r.get("total_input_tokens").asInt(), r.toString());
    }

    @Test
    void bench_mutualTls_presentsTheClientCertificate_andFailsInOneLineWithout() throws Exception {
        Path json = dir.resolve("mtls.json");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--backend", "openai", "--target", url(mutual, "https"),
                "--tls-ca", ca.certFile().toString(), "--tls-cert", client.cert().toString(), "--tls-key",
                client.key().toString(), "--num-requests", "2", "--max-concurrency", "1", "--input-len", "fixed:8",
                "--output-len", "fixed:3", "--result-json", json.toString());
        assertEquals(0, run.exit(), run.err());
        assertEquals(6, JSON.readTree(json.toFile()).get("runs").get(0).get("total_output_tokens").asInt());

        RunCommandTest.Run without = RunCommandTest.run("bench", "--backend", "openai", "--target",
                url(mutual, "https"), "--tls-ca", ca.certFile().toString(), "--max-concurrency", "1",
                "--num-requests", "1");
        assertEquals(BenchCommand.FAILED, without.exit(), without.err());
        assertTrue(lastLine(without.err()).startsWith("expertmesh bench: cannot reach " + url(mutual, "https")),
                without.err());
    }

    @Test
    void bench_withoutToken_failsOnTheServers401() {
        RunCommandTest.Run run = RunCommandTest.run("bench", "--backend", "openai", "--target", url(secure, "https"),
                "--tls-ca", ca.certFile().toString(), "--max-concurrency", "1", "--num-requests", "1");
        assertEquals(BenchCommand.FAILED, run.exit(), run.err());
        String line = lastLine(run.err());
        assertTrue(line.contains("answered HTTP 401") && line.contains("Bearer"), line);
    }

    @Test
    void bench_unreachableTarget_failsInOneLine() throws IOException {
        int closed;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            closed = s.getLocalPort();
        }
        RunCommandTest.Run run = RunCommandTest.run("bench", "--backend", "openai", "--target",
                "http://127.0.0.1:" + closed, "--max-concurrency", "1", "--num-requests", "1");
        assertEquals(BenchCommand.FAILED, run.exit(), run.err());
        assertEquals("expertmesh bench: cannot reach http://127.0.0.1:" + closed + ": connection refused",
                lastLine(run.err()));
    }

    @Test
    void bench_httpsServerNotTrusted_failsTheHandshakeInOneLine() {
        RunCommandTest.Run run = RunCommandTest.run("bench", "--backend", "openai", "--target", url(secure, "https"),
                "--token-file", tokenFile.toString(), "--max-concurrency", "1", "--num-requests", "1");
        assertEquals(BenchCommand.FAILED, run.exit(), run.err());
        assertTrue(lastLine(run.err()).contains("TLS handshake failed"), run.err());
    }

    @Test
    void bench_badBackendCombinations_areUsageErrors() {
        String http = url(plain, "http");
        assertUsage("needs --target http://HOST:PORT", "bench", "--backend", "openai", "--target",
                "127.0.0.1:" + plain.port(), "--max-concurrency", "1");
        assertUsage("takes one --target URL", "bench", "--backend", "openai", "--target", http + "," + http,
                "--max-concurrency", "1");
        assertUsage("--model is for --backend openai", "bench", "--target", "127.0.0.1:" + plain.port(), "--model",
                "x", "--max-concurrency", "1");
        assertUsage("add --backend openai", "bench", "--target", http, "--max-concurrency", "1");
        assertUsage("need an https:// target", "bench", "--backend", "openai", "--target", http, "--tls-ca",
                ca.certFile().toString(), "--max-concurrency", "1");
        assertUsage("not a loopback address", "bench", "--backend", "openai", "--target", "http://192.0.2.1:8000",
                "--max-concurrency", "1");
        assertUsage("refusing to send the bearer token in plain text", "bench", "--backend", "openai", "--target",
                "http://192.0.2.1:8000", "--allow-remote", "--token-file", tokenFile.toString(),
                "--max-concurrency", "1");
        assertUsage("Invalid value for option '--backend'", "bench", "--backend", "rest", "--target", http,
                "--max-concurrency", "1");
    }

    private static void assertUsage(String expected, String... args) {
        RunCommandTest.Run run = RunCommandTest.run(args);
        assertEquals(UserErrorHandler.USAGE_ERROR, run.exit(), run.err());
        assertTrue(run.err().contains(expected), run.err());
        assertFalse(run.err().contains("\tat "), "no stack trace: " + run.err());
    }

    private static String lastLine(String text) {
        String[] lines = text.strip().split("\n");
        return lines[lines.length - 1];
    }
}
