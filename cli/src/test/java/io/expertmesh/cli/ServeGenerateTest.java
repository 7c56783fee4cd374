package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.router.RouterConfig;
import io.expertmesh.router.RouterServer;
import io.expertmesh.router.engine.EngineConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The real router on a TCP port: {@code generate --json} reproduces {@code run --json}; Python talks to it. */
class ServeGenerateTest {
    static final Path FIXTURE = RunCommandTest.FIXTURE;
    static final String PROMPT = "0,818,726,297,56,207,375,667";
    static RouterServer server;

    @BeforeAll
    static void serve() throws Exception {
        RouterConfig config = new RouterConfig(0, FIXTURE, new EngineConfig(16, 16L << 20, 256, 16, 16, true), 4096,
                Duration.ofSeconds(1));
        server = new RouterServer(config).start(() -> {
            try {
                return LoadedModel.open(FIXTURE, new VectorKernels(ComputePool.create(2)), (a, b) -> { });
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

    /** The token lines, and the summary without its timings. */
    static List<String> comparable(String out) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<String> lines = new ArrayList<>();
        for (String line : out.strip().split("\n")) {
            JsonNode n = json.readTree(line);
            if (n.has("finish_reason")) {
                ObjectNode s = (ObjectNode) n;
                s.retain("finish_reason", "prompt_tokens", "completion_tokens", "cached_prompt_tokens");
                lines.add(s.toString());
            } else {
                lines.add(line);
            }
        }
        return lines;
    }

    @Test
    void generateJson_againstServe_reproducesRunExactly() throws Exception {
        String[] sampling = {"--prompt-ids", PROMPT, "--max-tokens", "9", "--temperature", "0", "--top-logprobs",
            "5", "--ignore-eos", "--json"};
        List<String> runArgs = new ArrayList<>(List.of("run", "--model", FIXTURE.toString()));
        runArgs.addAll(List.of(sampling));
        List<String> genArgs = new ArrayList<>(List.of("generate", "--target", "127.0.0.1:" + server.port()));
        genArgs.addAll(List.of(sampling));
        RunCommandTest.Run run = RunCommandTest.run(runArgs.toArray(String[]::new));
        RunCommandTest.Run gen = RunCommandTest.run(genArgs.toArray(String[]::new));
        assertEquals(0, run.exit(), run.err());
        assertEquals(0, gen.exit(), gen.err());
        assertEquals(comparable(run.out()), comparable(gen.out()));
        assertEquals(10, comparable(gen.out()).size());
    }

    @Test
    void generate_sampledWithSeed_reproducesRunExactly() throws Exception {
        String[] sampling = {"--prompt-ids", PROMPT, "--max-tokens", "12", "--temperature", "0.9", "--top-p", "0.9",
            "--seed", "77", "--ignore-eos", "--json"};
        List<String> runArgs = new ArrayList<>(List.of("run", "--model", FIXTURE.toString()));
        runArgs.addAll(List.of(sampling));
        List<String> genArgs = new ArrayList<>(List.of("generate", "--target", "127.0.0.1:" + server.port()));
        genArgs.addAll(List.of(sampling));
        assertEquals(comparable(RunCommandTest.run(runArgs.toArray(String[]::new)).out()),
                comparable(RunCommandTest.run(genArgs.toArray(String[]::new)).out()));
    }

    @Test
    void pythonClient_againstRealRouter_getsReferenceTokens() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/python3")), "no /usr/bin/python3");
        Process check = new ProcessBuilder("bash", "-c",
                "/usr/bin/python3 -c 'import grpc, google.protobuf' && command -v protoc && command -v "
                        + "grpc_python_plugin").redirectErrorStream(true).start();
        check.getInputStream().readAllBytes();
        assumeTrue(check.waitFor() == 0, "python3-grpcio, protobuf-compiler or protobuf-compiler-grpc missing");
        Process p = new ProcessBuilder("bash", "../tools/interop/run_interop.sh", "127.0.0.1:" + server.port(),
                "--prompt-ids", PROMPT, "--max-tokens", "9", "--ignore-eos", "--expect-tokens", "765,164,924,360,550,932,152,385,494",
                "--expect-finish", "length", "--expect-model-id", "f32", "--expect-prompt-tokens", "8")
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.startsWith("{\"health\": \"SERVING\"}"), output);
    }
}
