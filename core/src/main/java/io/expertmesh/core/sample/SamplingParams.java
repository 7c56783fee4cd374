package io.expertmesh.core.sample;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What one request asks of the sampler and the stop logic, validated once when the request arrives. A bad value
 * throws {@link InvalidSamplingParameter}, which names the API field (snake_case, as the client spelled it); its
 * message gives the field, the allowed range and the value received, because the router returns it verbatim as
 * gRPC {@code INVALID_ARGUMENT}.
 *
 * <p>Semantics follow vLLM / OpenAI so clients get what they expect:
 *
 * @param temperature       divides the logits; 0 means greedy (argmax, lowest id on ties)
 * @param topK              keep only the k most likely tokens; 0 or -1 turns it off
 * @param topP              keep the smallest set of most likely tokens whose probability reaches top_p; 1 is off
 * @param minP              drop tokens whose probability is below min_p times the most likely token's; 0 is off
 * @param repetitionPenalty HF/vLLM: for every token seen in prompt or output, a positive logit is divided by it
 *                          and a negative one multiplied; 1 is off
 * @param presencePenalty   OpenAI: subtracted once from the logit of every token already in the output
 * @param frequencyPenalty  OpenAI: subtracted from a token's logit once per time it occurs in the output
 * @param seed              same seed, same parameters and same logits give the same tokens; null draws a seed
 * @param maxTokens         the most tokens to generate (the stop token counts)
 * @param stopTokenIds      token ids that end the sequence (even with ignoreEos)
 * @param stopStrings       texts that end the sequence; the output is cut before the match
 * @param ignoreEos         keep going past the model's end-of-sequence tokens (benchmarks)
 * @param topLogprobs       how many most likely alternatives to report with each token, 0..20
 */
public record SamplingParams(
        float temperature,
        int topK,
        float topP,
        float minP,
        float repetitionPenalty,
        float presencePenalty,
        float frequencyPenalty,
        Long seed,
        int maxTokens,
        Set<Integer> stopTokenIds,
        List<String> stopStrings,
        boolean ignoreEos,
        int topLogprobs) {

    /** vLLM's default; a chat front end usually sets it from the remaining context. */
    public static final int DEFAULT_MAX_TOKENS = 16;
    public static final int MAX_STOP_STRINGS = 16;
    public static final int MAX_STOP_STRING_LENGTH = 256;
    /** OpenAI's limit on {@code top_logprobs}. */
    public static final int MAX_TOP_LOGPROBS = 20;
    public static final float MAX_ABS_PENALTY = 2f;

    public SamplingParams {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new InvalidSamplingParameter("temperature",
                    "temperature must be a finite number >= 0 (0 means greedy), got " + temperature);
        }
        if (topK < -1) {
            throw new InvalidSamplingParameter("top_k",
                    "top_k must be 0 or -1 (disabled) or >= 1, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new InvalidSamplingParameter("top_p", "top_p must be in (0, 1] (1 disables it), got " + topP);
        }
        if (!(minP >= 0 && minP < 1)) {
            throw new InvalidSamplingParameter("min_p", "min_p must be in [0, 1) (0 disables it), got " + minP);
        }
        if (!(repetitionPenalty > 0) || Float.isInfinite(repetitionPenalty)) {
            throw new InvalidSamplingParameter("repetition_penalty",
                    "repetition_penalty must be a finite number > 0 (1 disables it), got " + repetitionPenalty);
        }
        checkPenalty("presence_penalty", presencePenalty);
        checkPenalty("frequency_penalty", frequencyPenalty);
        if (maxTokens < 1) {
            throw new InvalidSamplingParameter("max_tokens", "max_tokens must be >= 1, got " + maxTokens);
        }
        stopTokenIds = copyStopTokenIds(stopTokenIds);
        stopStrings = copyStopStrings(stopStrings);
        if (topLogprobs < 0 || topLogprobs > MAX_TOP_LOGPROBS) {
            throw new InvalidSamplingParameter("top_logprobs",
                    "top_logprobs must be in [0, " + MAX_TOP_LOGPROBS + "], got " + topLogprobs);
        }
    }

    /** Temperature 1, no filters, no penalties, random seed, {@value #DEFAULT_MAX_TOKENS} tokens, no stops. */
    public static SamplingParams defaults() {
        return new SamplingParams(1f, 0, 1f, 0f, 1f, 0f, 0f, null, DEFAULT_MAX_TOKENS,
                Set.of(), List.of(), false, 0);
    }

    /** {@link #defaults()} with temperature 0: deterministic argmax decoding. */
    public static SamplingParams greedy() {
        return defaults().withTemperature(0f);
    }

    /** True when the token is the argmax, so the RNG and the filters are not used. */
    public boolean isGreedy() {
        return temperature == 0f;
    }

    /** True when top-k would keep fewer than {@code vocab} tokens. */
    public boolean topKActive(int vocab) {
        return topK > 0 && topK < vocab;
    }

    public SamplingParams withTemperature(float v) {
        return new SamplingParams(v, topK, topP, minP, repetitionPenalty, presencePenalty, frequencyPenalty,
                seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withTopK(int v) {
        return new SamplingParams(temperature, v, topP, minP, repetitionPenalty, presencePenalty, frequencyPenalty,
                seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withTopP(float v) {
        return new SamplingParams(temperature, topK, v, minP, repetitionPenalty, presencePenalty, frequencyPenalty,
                seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withMinP(float v) {
        return new SamplingParams(temperature, topK, topP, v, repetitionPenalty, presencePenalty, frequencyPenalty,
                seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withRepetitionPenalty(float v) {
        return new SamplingParams(temperature, topK, topP, minP, v, presencePenalty, frequencyPenalty,
                seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withPresencePenalty(float v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, v, frequencyPenalty,
                seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withFrequencyPenalty(float v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty, v,
                seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withSeed(Long v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, v, maxTokens, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withMaxTokens(int v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed, v, stopTokenIds, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withStopTokenIds(Set<Integer> v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed, maxTokens, v, stopStrings, ignoreEos, topLogprobs);
    }

    public SamplingParams withStopStrings(List<String> v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed, maxTokens, stopTokenIds, v, ignoreEos, topLogprobs);
    }

    public SamplingParams withIgnoreEos(boolean v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed, maxTokens, stopTokenIds, stopStrings, v, topLogprobs);
    }

    public SamplingParams withTopLogprobs(int v) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed, maxTokens, stopTokenIds, stopStrings, ignoreEos, v);
    }

    private static void checkPenalty(String name, float v) {
        if (!(v >= -MAX_ABS_PENALTY && v <= MAX_ABS_PENALTY)) {
            throw new InvalidSamplingParameter(name, name + " must be in [-2, 2] (0 disables it), got " + v);
        }
    }

    private static Set<Integer> copyStopTokenIds(Set<Integer> ids) {
        if (ids == null) {
            return Set.of();
        }
        var copy = new LinkedHashSet<Integer>();
        for (Integer id : ids) {
            if (id == null || id < 0) {
                throw new InvalidSamplingParameter("stop_token_ids",
                        "stop_token_ids must be token ids >= 0, got " + id);
            }
            copy.add(id);
        }
        return Set.copyOf(copy);
    }

    private static List<String> copyStopStrings(List<String> stops) {
        if (stops == null) {
            return List.of();
        }
        if (stops.size() > MAX_STOP_STRINGS) {
            throw new InvalidSamplingParameter("stop", "stop may hold at most " + MAX_STOP_STRINGS
                    + " strings, got " + stops.size());
        }
        var copy = new ArrayList<String>(stops.size());
        for (int i = 0; i < stops.size(); i++) {
            String s = stops.get(i);
            if (s == null || s.isEmpty()) {
                throw new InvalidSamplingParameter("stop[" + i + "]",
                        "stop[" + i + "] is empty; stop strings must be non-empty");
            }
            if (s.length() > MAX_STOP_STRING_LENGTH) {
                throw new InvalidSamplingParameter("stop[" + i + "]", "stop[" + i + "] is " + s.length()
                        + " characters long; at most " + MAX_STOP_STRING_LENGTH + " are allowed");
            }
            copy.add(s);
        }
        return List.copyOf(copy);
    }
}
