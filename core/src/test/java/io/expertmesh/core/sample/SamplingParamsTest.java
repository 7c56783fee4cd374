package io.expertmesh.core.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class SamplingParamsTest {

    private static final SamplingParams D = SamplingParams.defaults();

    static Stream<Arguments> invalid() {
        return Stream.of(
                bad("negative temperature", () -> D.withTemperature(-0.5f), "temperature", "-0.5"),
                bad("NaN temperature", () -> D.withTemperature(Float.NaN), "temperature", "NaN"),
                bad("infinite temperature", () -> D.withTemperature(Float.POSITIVE_INFINITY), "temperature",
                        "Infinity"),
                bad("top_k -2", () -> D.withTopK(-2), "top_k", "-2"),
                bad("top_p 0", () -> D.withTopP(0f), "top_p must be in (0, 1]", "0.0"),
                bad("top_p above 1", () -> D.withTopP(1.5f), "top_p", "1.5"),
                bad("min_p 1", () -> D.withMinP(1f), "min_p must be in [0, 1)", "1.0"),
                bad("min_p negative", () -> D.withMinP(-0.1f), "min_p", "-0.1"),
                bad("repetition 0", () -> D.withRepetitionPenalty(0f), "repetition_penalty", "> 0"),
                bad("presence 2.5", () -> D.withPresencePenalty(2.5f), "presence_penalty must be in [-2, 2]", "2.5"),
                bad("frequency -3", () -> D.withFrequencyPenalty(-3f), "frequency_penalty", "-3.0"),
                bad("max_tokens 0", () -> D.withMaxTokens(0), "max_tokens must be >= 1", "0"),
                bad("negative stop token", () -> D.withStopTokenIds(Set.of(5, -1)), "stop_token_ids", "-1"),
                bad("17 stop strings", () -> D.withStopStrings(Collections.nCopies(17, "x")), "at most 16", "17"),
                bad("empty stop string", () -> D.withStopStrings(List.of("ok", "")), "stop[1] is empty", ""),
                bad("null stop string", () -> D.withStopStrings(Arrays.asList("ok", null)), "stop[1]", ""),
                bad("long stop string", () -> D.withStopStrings(List.of("y".repeat(257))), "stop[0] is 257",
                        "at most 256"),
                bad("top_logprobs 21", () -> D.withTopLogprobs(21), "top_logprobs must be in [0, 20]", "21"),
                bad("top_logprobs -1", () -> D.withTopLogprobs(-1), "top_logprobs", "-1"));
    }

    private static Arguments bad(String name, Supplier<SamplingParams> make, String part1, String part2) {
        return Arguments.of(name, make, part1, part2);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("invalid")
    void constructor_invalidValue_throwsMessageNamingFieldAndValue(String name, Supplier<SamplingParams> make,
            String part1, String part2) {
        var e = assertThrows(IllegalArgumentException.class, make::get);
        assertTrue(e.getMessage().contains(part1), () -> "message '" + e.getMessage() + "' lacks '" + part1 + "'");
        assertTrue(e.getMessage().contains(part2), () -> "message '" + e.getMessage() + "' lacks '" + part2 + "'");
    }

    @Test
    void constructor_boundaryValues_accepted() {
        D.withTemperature(0f).withTopK(-1).withTopP(1f).withMinP(0f).withPresencePenalty(-2f)
                .withFrequencyPenalty(2f).withTopLogprobs(20).withMaxTokens(1)
                .withStopStrings(Collections.nCopies(16, "z".repeat(256)));
        D.withTopK(0).withTopK(1).withTopP(Math.ulp(0f)).withRepetitionPenalty(Float.MIN_VALUE);
    }

    @Test
    void constructor_nullCollections_becomeEmpty() {
        var p = D.withStopTokenIds(null).withStopStrings(null);
        assertEquals(Set.of(), p.stopTokenIds());
        assertEquals(List.of(), p.stopStrings());
    }

    @Test
    void constructor_mutableStopStrings_copied() {
        var stops = new ArrayList<>(List.of("a"));
        var p = D.withStopStrings(stops);
        stops.add("b");
        assertEquals(List.of("a"), p.stopStrings());
        assertThrows(UnsupportedOperationException.class, () -> p.stopStrings().add("c"));
    }

    @Test
    void greedy_temperatureZero_isGreedy() {
        assertTrue(SamplingParams.greedy().isGreedy());
        assertEquals(false, D.isGreedy());
        assertEquals(SamplingParams.DEFAULT_MAX_TOKENS, D.maxTokens());
    }
}
