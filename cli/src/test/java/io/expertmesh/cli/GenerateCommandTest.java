package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.grpc.Status;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code expertmesh generate} against the fake InferenceService: in-process, and once over a real socket. */
class GenerateCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();
    /** The keys of run's summary line, in order: generate must print the same. */
    static final List<String> SUMMARY_KEYS = List.of("finish_reason", "prompt_tokens", "completion_tokens",
            "cached_prompt_tokens", "time_to_first_token_ms", "decode_ms", "prefill_tokens_per_second",
            "decode_tokens_per_second");

    private FakeInferenceService service;
    private FakeRouter router;

    record Run(int exit, String out, String err) {
    }

    @BeforeEach
    void start() {
        service = new FakeInferenceService();
        router = FakeRouter.inProcess(service);
    }

    @AfterEach
    void stop() throws InterruptedException {
        router.close();
    }

    /** Runs the command line with generate's client going to the in-process fake. */
    private Run run(String... args) {
        CommandLine.IFactory defaults = CommandLine.defaultFactory();
        CommandLine.IFactory factory = new CommandLine.IFactory() {
            @Override
            @SuppressWarnings("unchecked")
            public <K> K create(Class<K> cls) throws Exception {
                return cls == GenerateCommand.class
                        ? (K) new GenerateCommand((target, config) -> router.client(config)) : defaults.create(cls);
            }
        };
        return run(Main.commandLine(factory), args);
    }

    private static Run run(CommandLine cl, String... args) {
        RunCommandTest.Run r = RunCommandTest.run(cl, args);
        return new Run(r.exit(), r.out(), r.err());
    }

    @Test
    void generate_promptIdsJson_printsRunsTokenLinesAndSummary() throws Exception {
        Run r = run("generate", "--target", "fake:1", "--prompt-ids", "1,2,3", "--max-tokens", "5",
                "--temperature", "0", "--top-logprobs", "2", "--json");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(6, lines.length, r.out());
        assertEquals("{\"index\":0,\"token_id\":765,\"text\":\" t765\",\"logprob\":-0.125,\"top_logprobs\":"
                + "[{\"token_id\":765,\"logprob\":-0.125},{\"token_id\":766,\"logprob\":-1.125}]}", lines[0]);
        for (int i = 0; i < 5; i++) {
            JsonNode line = JSON.readTree(lines[i]);
            assertEquals(i, line.get("index").asInt());
            assertEquals(FakeInferenceService.SCRIPT[i], line.get("token_id").asInt());
        }
        JsonNode summary = JSON.readTree(lines[5]);
        List<String> keys = new ArrayList<>();
        summary.fieldNames().forEachRemaining(keys::add);
        assertEquals(SUMMARY_KEYS, keys);
        assertEquals("length", summary.get("finish_reason").asText());
        assertEquals(3, summary.get("prompt_tokens").asInt());
        assertEquals(5, summary.get("completion_tokens").asInt());
        assertEquals(2.5, summary.get("time_to_first_token_ms").asDouble());
        assertEquals(16.0, summary.get("decode_ms").asDouble());
        assertEquals(1200.0, summary.get("prefill_tokens_per_second").asDouble(), 1e-9);
        assertEquals(250.0, summary.get("decode_tokens_per_second").asDouble(), 1e-9);
        assertTrue(service.lastRequest().getLogprobs());
    }

    @Test
    void generate_samplingFlags_sentAsProtoSamplingParams() {
        Run r = run("generate", "--target", "fake:1", "--prompt", "hi", "--max-tokens", "3", "--temperature", "0.7",
                "--top-p", "0.9", "--top-k", "40", "--min-p", "0.05", "--repetition-penalty", "1.1",
                "--presence-penalty", "0.5", "--frequency-penalty", "-0.5", "--seed", "1234", "--stop", "END",
                "--stop-token-id", "9", "--ignore-eos");
        assertEquals(0, r.exit(), r.err());
        GenerateRequest q = service.lastRequest();
        SamplingParams s = q.getSampling();
        assertEquals("hi", q.getText());
        assertEquals(3, q.getMaxTokens());
        assertEquals(0.7f, s.getTemperature());
        assertEquals(0.9f, s.getTopP());
        assertEquals(40, s.getTopK());
        assertEquals(0.05f, s.getMinP());
        assertEquals(1.1f, s.getRepetitionPenalty());
        assertEquals(0.5f, s.getPresencePenalty());
        assertEquals(-0.5f, s.getFrequencyPenalty());
        assertEquals(1234L, s.getSeed());
        assertEquals(List.of("END"), q.getStopList());
        assertEquals(List.of(9), q.getStopTokenIdsList());
        assertTrue(q.getIgnoreEos());
        assertEquals(false, q.getLogprobs());
    }

    @Test
    void generate_textPrompt_streamsTextToStdoutAndSummaryToStderr() {
        Run r = run("generate", "--target", "fake:1", "--prompt", "hello", "--max-tokens", "3");
        assertEquals(0, r.exit(), r.err());
        assertEquals(" t765 t164 t924" + System.lineSeparator(), r.out());
        assertTrue(r.err().startsWith("[length] prompt 6 tokens (0 cached), completion 3 tokens"), r.err());
    }

    @Test
    void generate_chatWithSystem_sendsSystemThenUserMessage() {
        Run r = run("generate", "--target", "fake:1", "--chat", "hi", "--system", "be brief", "--max-tokens", "2");
        assertEquals(0, r.exit(), r.err());
        var chat = service.lastRequest().getChat();
        assertEquals(2, chat.getMessagesCount());
        assertEquals("system", chat.getMessages(0).getRole());
        assertEquals("be brief", chat.getMessages(0).getContent());
        assertEquals("user", chat.getMessages(1).getRole());
    }

    @Test
    void generate_idOutsideVocabulary_exit2WithFieldViolationOnOneLine() {
        Run r = run("generate", "--target", "fake:1", "--prompt-ids", "1,5000");
        assertEquals(2, r.exit());
        assertEquals("", r.out());
        assertEquals("expertmesh generate: INVALID_ARGUMENT: invalid GenerateRequest: 1 field(s) "
                + "(token_ids.ids[1]: 5000 is outside the vocabulary [0, 1024))" + System.lineSeparator(), r.err());
    }

    @Test
    void generate_queueFull_exit2() {
        service.failNextGenerate(Status.RESOURCE_EXHAUSTED.withDescription("waiting queue is full (64)"));
        Run r = run("generate", "--target", "fake:1", "--prompt", "hi");
        assertEquals(2, r.exit());
        assertEquals("expertmesh generate: RESOURCE_EXHAUSTED: waiting queue is full (64)" + System.lineSeparator(),
                r.err());
    }

    @Test
    void generate_draining_exit3() {
        service.failNextGenerate(Status.UNAVAILABLE.withDescription("draining"));
        Run r = run("generate", "--target", "fake:1", "--prompt", "hi");
        assertEquals(3, r.exit());
        assertEquals("expertmesh generate: UNAVAILABLE: draining (router fake:1)" + System.lineSeparator(), r.err());
    }

    @Test
    void generate_slowerThanDeadlineMs_exit3AndRouterSeesCancellation() throws Exception {
        service.tokenDelay(Duration.ofMillis(300));
        Run r = run("generate", "--target", "fake:1", "--prompt", "hi", "--deadline-ms", "100");
        assertEquals(3, r.exit());
        assertEquals("expertmesh generate: no complete response within 100 ms (--deadline-ms; router fake:1)"
                + System.lineSeparator(), r.err());
        assertTrue(service.awaitCancelled(Duration.ofSeconds(5)));
    }

    @Test
    void generate_firstContactSlowerThanDeadlineMs_deadlineCoversOnlyTheGeneration() {
        // connecting and the first call (here: a slow GetModelInfo) come before the deadline starts
        service.unaryDelay(Duration.ofMillis(600));
        Run r = run("generate", "--target", "fake:1", "--prompt-ids", "1,2", "--max-tokens", "2",
                "--deadline-ms", "300");
        assertEquals(0, r.exit(), r.err());
        assertEquals(" t765 t164" + System.lineSeparator(), r.out());
    }

    @Test
    void generate_descriptionRepeatsItsFieldViolation_saidOnce() throws Exception {
        // as the real router answers: the description is the violation's text
        String why = "token_ids.ids[1]: token id 5000 is outside the vocabulary [0, 1024)";
        service = new FakeInferenceService() {
            @Override
            public void generate(GenerateRequest request,
                                 io.grpc.stub.StreamObserver<io.expertmesh.proto.inference.v1.GenerateResponse> o) {
                o.onError(io.grpc.protobuf.StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
                        .setCode(com.google.rpc.Code.INVALID_ARGUMENT_VALUE).setMessage(why)
                        .addDetails(com.google.protobuf.Any.pack(com.google.rpc.BadRequest.newBuilder()
                                .addFieldViolations(com.google.rpc.BadRequest.FieldViolation.newBuilder()
                                        .setField("token_ids.ids[1]")
                                        .setDescription("token id 5000 is outside the vocabulary [0, 1024)"))
                                .build())).build()));
            }
        };
        router.close();
        router = FakeRouter.inProcess(service);
        Run r = run("generate", "--target", "fake:1", "--prompt-ids", "1,5000");
        assertEquals(2, r.exit());
        assertEquals("expertmesh generate: INVALID_ARGUMENT: " + why + System.lineSeparator(), r.err());
    }

    @Test
    void generate_noPrompt_exit2BeforeConnecting() {
        Run r = run("generate", "--target", "fake:1");
        assertEquals(2, r.exit());
        assertEquals("expertmesh generate: give exactly one of --prompt, --prompt-ids, --chat"
                + System.lineSeparator(), r.err());
        assertEquals(null, service.lastRequest());
    }

    @Test
    void generate_badSampling_exit2WithRunsMessage() {
        Run r = run("generate", "--target", "fake:1", "--prompt", "hi", "--top-p", "1.5");
        assertEquals(2, r.exit());
        assertTrue(r.err().startsWith("expertmesh generate: "), r.err());
        assertEquals(null, service.lastRequest());
    }

    @Test
    void generate_fakeRouterOnRealSocket_printsJsonLines() throws Exception {
        try (FakeRouter socket = FakeRouter.onSocket(new FakeInferenceService())) {
            Run r = run(Main.commandLine(), "generate", "--target", socket.target(), "--prompt-ids", "1,2",
                    "--max-tokens", "3", "--json");
            assertEquals(0, r.exit(), r.err());
            Iterator<String> lines = r.out().lines().iterator();
            assertEquals(765, JSON.readTree(lines.next()).get("token_id").asInt());
            lines.next();
            lines.next();
            assertEquals("length", JSON.readTree(lines.next()).get("finish_reason").asText());
        }
    }

    @Test
    void generate_twoRouters_commaSeparatedOrRepeated_endToEnd() throws Exception {
        try (FakeRouter a = FakeRouter.onSocket(new FakeInferenceService());
             FakeRouter b = FakeRouter.onSocket(new FakeInferenceService())) {
            Run r = run(Main.commandLine(), "generate", "--target", a.target() + "," + b.target(), "--prompt-ids",
                    "1,2", "--max-tokens", "3", "--json");
            assertEquals(0, r.exit(), r.err());
            assertEquals(4, r.out().lines().count(), r.out());
            r = run(Main.commandLine(), "generate", "--target", a.target(), "--target", b.target(), "--prompt-ids",
                    "1,2", "--max-tokens", "3");
            assertEquals(0, r.exit(), r.err());
            assertEquals(2, a.service().generateCalls() + b.service().generateCalls());
        }
    }

    @Test
    void generate_oneOfTwoRoutersDown_succeedsOnTheOther() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (FakeRouter live = FakeRouter.onSocket(new FakeInferenceService())) {
            Run r = run(Main.commandLine(), "generate", "--target", "localhost:" + port + "," + live.target(),
                    "--prompt-ids", "1,2", "--max-tokens", "3");
            assertEquals(0, r.exit(), r.err());
            assertEquals(1, live.service().generateCalls());
        }
    }

    @Test
    void generate_twoRoutersNothingListening_exit3() throws Exception {
        int p1;
        int p2;
        try (ServerSocket s1 = new ServerSocket(0); ServerSocket s2 = new ServerSocket(0)) {
            p1 = s1.getLocalPort();
            p2 = s2.getLocalPort();
        }
        String targets = "localhost:" + p1 + ",localhost:" + p2;
        Run r = run(Main.commandLine(), "generate", "--target", targets, "--prompt", "hi");
        assertEquals(3, r.exit());
        assertEquals("expertmesh generate: routers " + targets + " are not reachable (connection refused: "
                + "nothing listens there)" + System.lineSeparator(), r.err());
    }

    @Test
    void generate_malformedRouterAmongSeveral_exit2OneLine() {
        Run r = run(Main.commandLine(), "generate", "--target", "localhost:1,localhost", "--prompt", "hi");
        assertEquals(2, r.exit());
        assertEquals("expertmesh generate: bad router address 'localhost': expected HOST:PORT (several routers "
                + "are given as HOST:PORT each; a URI target such as dns:///NAME:PORT must be given alone)"
                + System.lineSeparator(), r.err());
    }

    @Test
    void generate_nothingListening_exit3() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Run r = run(Main.commandLine(), "generate", "--target", "localhost:" + port, "--prompt", "hi",
                "--deadline-ms", "10000");
        assertEquals(3, r.exit());
        assertEquals("expertmesh generate: router localhost:" + port + " is not reachable (connection refused: "
                + "nothing listens there)" + System.lineSeparator(), r.err());
    }
}
