package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code expertmesh run} end to end on the DeepSeek reference fixture, and its errors. */
class RunCommandTest {
    static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");
    static final ObjectMapper JSON = new ObjectMapper();

    record Run(int exit, String out, String err) {
    }

    static Run run(String... args) {
        return run(Main.commandLine(), args);
    }

    /** Runs a prepared command line, capturing its out and err. */
    static Run run(CommandLine cl, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    @Test
    void run_fixtureGreedyJson_printsReferenceTokensAndLogprobs() throws Exception {
        JsonNode ref = JSON.readTree(FIXTURE.resolve("reference.json").toFile());
        String ids = String.join(",", ref.get("prompt_ids").valueStream().map(JsonNode::asText).toList());
        Run r = run("run", "--model", FIXTURE.toString(), "--prompt-ids", ids, "--max-tokens", "9",
                "--temperature", "0", "--top-logprobs", "5", "--ignore-eos", "--json");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(10, lines.length, r.out());
        List<JsonNode> steps = new ArrayList<>();
        steps.add(ref.get("prefill").get("positions").get(ref.get("prompt_ids").size() - 1));
        ref.get("decode").forEach(steps::add);
        for (int i = 0; i < 9; i++) {
            JsonNode line = JSON.readTree(lines[i]);
            int expected = ref.get("greedy_tokens").get(i).asInt();
            assertEquals(i, line.get("index").asInt());
            assertEquals(expected, line.get("token_id").asInt(), "token " + i);
            double[] logSoftmax = logSoftmax(steps.get(i).get("logits"));
            assertEquals(logSoftmax[expected], line.get("logprob").asDouble(), 1e-3, "logprob " + i);
            JsonNode top = line.get("top_logprobs");
            assertEquals(5, top.size());
            assertEquals(expected, top.get(0).get("token_id").asInt());
            for (JsonNode t : top) {
                assertEquals(logSoftmax[t.get("token_id").asInt()], t.get("logprob").asDouble(), 1e-3);
            }
        }
        JsonNode summary = JSON.readTree(lines[9]);
        assertEquals("length", summary.get("finish_reason").asText());
        assertEquals(8, summary.get("prompt_tokens").asInt());
        assertEquals(9, summary.get("completion_tokens").asInt());
        assertTrue(summary.get("time_to_first_token_ms").asDouble() > 0);
    }

    @Test
    void run_sameSeed_sameTokens() {
        String[] args = {"run", "--model", FIXTURE.toString(), "--prompt-ids", "0,5,6,7", "--max-tokens", "12",
            "--temperature", "0.9", "--top-p", "0.95", "--seed", "1234", "--ignore-eos", "--json"};
        Run a = run(args);
        Run b = run(args);
        assertEquals(0, a.exit(), a.err());
        assertEquals(tokens(a.out()), tokens(b.out()));
    }

    @Test
    void run_noPrompt_usageErrorBeforeTheModelIsLoaded() {
        // a directory that does not exist: had the model been loaded first, that would be the error
        Run r = run("run", "--model", "/nonexistent/model");
        assertEquals(2, r.exit());
        assertEquals("expertmesh run: give exactly one of --prompt, --prompt-ids, --chat", r.err().strip());
    }

    @Test
    void run_textPromptWithoutTokenizer_explainsToUsePromptIds() {
        Run r = run("run", "--model", FIXTURE.toString(), "--prompt", "hello");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("no tokenizer.json; use --prompt-ids"), r.err());
    }

    @Test
    void run_tokenOutsideVocabulary_saysWhichAndTheRange() {
        Run r = run("run", "--model", FIXTURE.toString(), "--prompt-ids", "0,5000");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("5000") && r.err().contains("[0, 1024)"), r.err());
    }

    @Test
    void run_negativeTemperature_rejected() {
        Run r = run("run", "--model", FIXTURE.toString(), "--prompt-ids", "0,5", "--temperature", "-1");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("temperature"), r.err());
    }

    @Test
    void run_missingModelDirectory_saysSo() {
        Run r = run("run", "--model", "/nonexistent/model", "--prompt-ids", "0,5");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("does not exist"), r.err());
    }

    private static List<Integer> tokens(String out) {
        List<Integer> ids = new ArrayList<>();
        for (String line : out.strip().split("\n")) {
            try {
                JsonNode n = JSON.readTree(line);
                if (n.has("token_id")) {
                    ids.add(n.get("token_id").asInt());
                }
            } catch (Exception e) {
                throw new AssertionError(line, e);
            }
        }
        return ids;
    }

    private static double[] logSoftmax(JsonNode logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (JsonNode v : logits) {
            max = Math.max(max, v.asDouble());
        }
        double sum = 0;
        for (JsonNode v : logits) {
            sum += Math.exp(v.asDouble() - max);
        }
        double lse = max + Math.log(sum);
        double[] out = new double[logits.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = logits.get(i).asDouble() - lse;
        }
        return out;
    }
}
