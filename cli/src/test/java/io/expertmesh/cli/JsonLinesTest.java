package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The exact bytes of the JSON lines that run and generate share. */
class JsonLinesTest {
    @Test
    void token_valuesAndAlternatives_oneExactLine() {
        StringWriter s = new StringWriter();
        new JsonLines(new PrintWriter(s)).token(0, 765, " t\"x", -0.125f,
                List.of(new JsonLines.Alternative(765, -0.125f), new JsonLines.Alternative(7, -1.5f)));
        assertEquals("{\"index\":0,\"token_id\":765,\"text\":\" t\\\"x\",\"logprob\":-0.125,\"top_logprobs\":"
                + "[{\"token_id\":765,\"logprob\":-0.125},{\"token_id\":7,\"logprob\":-1.5}]}" + System.lineSeparator(),
                s.toString());
    }

    @Test
    void token_noLogprob_writesJsonNull() {
        StringWriter s = new StringWriter();
        new JsonLines(new PrintWriter(s)).token(3, 1, "", null, List.of());
        assertEquals("{\"index\":3,\"token_id\":1,\"text\":\"\",\"logprob\":null,\"top_logprobs\":[]}"
                + System.lineSeparator(), s.toString());
    }

    @Test
    void summary_values_keysInRunOrder() {
        StringWriter s = new StringWriter();
        new JsonLines(new PrintWriter(s)).summary(new JsonLines.Summary("length", 8, 9, 0, 2.5, 32.0, 3200.0, 250.0));
        assertEquals("{\"finish_reason\":\"length\",\"prompt_tokens\":8,\"completion_tokens\":9,"
                + "\"cached_prompt_tokens\":0,\"time_to_first_token_ms\":2.5,\"decode_ms\":32.0,"
                + "\"prefill_tokens_per_second\":3200.0,\"decode_tokens_per_second\":250.0}" + System.lineSeparator(),
                s.toString());
    }
}
