package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.router.RouterConfig;
import io.expertmesh.router.RouterServer;
import io.expertmesh.router.engine.EngineConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code bench} against the real router on a TCP port (the fixture model: vocab 1024, context 256). */
class BenchCommandTest {
    static RouterServer server;
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @BeforeAll
    static void serve() throws Exception {
        Path fixture = RunCommandTest.FIXTURE;
        RouterConfig config = new RouterConfig(0, fixture, new EngineConfig(16, 16L << 20, 256, 16, 16, true), 4096,
                Duration.ofSeconds(1));
        server = new RouterServer(config).start(() -> {
            try {
                return LoadedModel.open(fixture, new VectorKernels(ComputePool.create(2)), (a, b) -> { });
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        server.awaitLoaded();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private String target() {
        return "127.0.0.1:" + server.port();
    }

    @Test
    void bench_closedLoopAgainstRouter_writesJsonWithAllSuccessesAndHtml() throws Exception {
        Path json = dir.resolve("result.json");
        Path html = dir.resolve("report.html");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--target", target(), "--num-requests", "12",
                "--max-concurrency", "4", "--input-len", "uniform:8:24", "--output-len", "fixed:8", "--warmup", "2",
                "--prefix-groups", "2", "--prefix-len", "32", "--slo", "ttft:60000,tpot:60000", "--result-json",
                json.toString(), "--report-html", html.toString());
        assertEquals(0, run.exit(), run.err());
        assertTrue(run.out().contains("Successful requests:"), run.out());
        JsonNode r = JSON.readTree(json.toFile()).get("runs").get(0);
        assertEquals(12, r.get("completed").asInt(), r.toString());
        assertEquals(0, r.get("failed").asInt());
        assertEquals(96, r.get("total_output_tokens").asInt());
        assertEquals(12, r.get("good_requests").asInt());
        assertEquals(12, r.get("requests").size());
        double ttft = r.get("mean_ttft_ms").asDouble();
        double e2e = r.get("mean_e2el_ms").asDouble();
        assertTrue(ttft > 0 && ttft <= e2e && e2e < 60_000, "ttft " + ttft + " e2e " + e2e);
        assertTrue(r.get("p99_e2el_ms").asDouble() >= r.get("p50_e2el_ms").asDouble());
        assertTrue(r.get("mean_tpot_ms").asDouble() > 0);
        assertEquals(84, r.get("count_itl").asInt(), "7 ITLs per request");
        assertTrue(r.get("output_throughput").asDouble() > 0);
        long input = r.get("total_input_tokens").asLong();
        assertTrue(input >= 12 * (32 + 8) && input <= 12 * (32 + 24), "input " + input);
        // 2 groups of a 32-token prefix (two 16-token blocks): every request after its group's first can hit
        assertTrue(r.get("prefix_cache_hit_rate").asDouble() > 0, r.toString());
        String page = Files.readString(html);
        assertTrue(page.contains("<svg"), "an SVG chart");
        assertTrue(page.contains("TTFT histogram"));
        // self-contained: nothing to fetch (the SVG namespace URI is a name, not a download)
        assertTrue(!page.contains("<script") && !page.contains("<link") && !page.contains("src="),
                "self-contained");
    }

    @Test
    void bench_outputBeyondContext_countsInvalidArgument() throws Exception {
        Path json = dir.resolve("errors.json");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--target", target(), "--num-requests", "4",
                "--max-concurrency", "2", "--input-len", "fixed:8", "--output-len", "fixed:300", "--max-context",
                "100000", "--result-json", json.toString());
        assertEquals(BenchCommand.FAILED, run.exit(), run.err());
        JsonNode r = JSON.readTree(json.toFile()).get("runs").get(0);
        assertEquals(0, r.get("completed").asInt());
        assertEquals(4, r.get("errors").get("INVALID_ARGUMENT").asInt(), r.toString());
        assertTrue(run.out().contains("INVALID_ARGUMENT"), run.out());
    }

    @Test
    void bench_sweep_runsEachRateAndDrawsTheCurve() throws Exception {
        Path json = dir.resolve("sweep.json");
        Path html = dir.resolve("sweep.html");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--target", target(), "--num-requests", "4",
                "--sweep", "20,inf", "--input-len", "fixed:8", "--output-len", "fixed:4", "--result-json",
                json.toString(), "--report-html", html.toString());
        assertEquals(0, run.exit(), run.err());
        JsonNode runs = JSON.readTree(json.toFile()).get("runs");
        assertEquals(2, runs.size());
        assertEquals("rate=20", runs.get(0).get("label").asText());
        assertEquals(4, runs.get(0).get("completed").asInt());
        assertTrue(runs.get(1).get("request_rate").isNull(), "inf is written as null");
        assertTrue(Files.readString(html).contains("Throughput–latency"));
    }

    @Test
    void bench_twoTargets_spreadsOverBoth_andRefusesARemoteOne() throws Exception {
        // two addresses of the one test router: the client treats them as two routers
        Path json = dir.resolve("two.json");
        RunCommandTest.Run run = RunCommandTest.run("bench", "--target", target(), "--target",
                "localhost:" + server.port(), "--num-requests", "4", "--max-concurrency", "2", "--input-len",
                "fixed:8", "--output-len", "fixed:4", "--result-json", json.toString());
        assertEquals(0, run.exit(), run.err());
        assertEquals(4, JSON.readTree(json.toFile()).get("runs").get(0).get("completed").asInt());

        RunCommandTest.Run remote = RunCommandTest.run("bench", "--target", target() + ",192.0.2.1:50051",
                "--max-concurrency", "1");
        assertEquals(UserErrorHandler.USAGE_ERROR, remote.exit());
        assertTrue(remote.err().contains("target 192.0.2.1:50051 is not a loopback address"), remote.err());
    }

    @Test
    void bench_remoteTarget_refusedWithoutAllowRemote() {
        RunCommandTest.Run run = RunCommandTest.run("bench", "--target", "192.0.2.1:50051", "--max-concurrency",
                "1");
        assertEquals(UserErrorHandler.USAGE_ERROR, run.exit());
        assertTrue(run.err().contains("--allow-remote"), run.err());
    }

    @Test
    void host_targetForms_extractsTheHost() {
        assertEquals("localhost", BenchCommand.host("localhost:50051"));
        assertEquals("::1", BenchCommand.host("[::1]:50051"));
        assertEquals("127.0.0.1", BenchCommand.host("dns:///127.0.0.1:50051"));
    }
}
