package io.expertmesh.cli;

import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import picocli.CommandLine.Option;

/** Sampling flags shared by {@code run} and {@code generate}; validated by {@link SamplingParams}. */
final class SamplingOptions {
    @Option(names = "--max-tokens", paramLabel = "N", description = "Tokens to generate at most (default 64).")
    int maxTokens = 64;

    @Option(names = "--temperature", paramLabel = "T", description = "0 = greedy (default 1.0).")
    float temperature = 1.0f;

    @Option(names = "--top-p", paramLabel = "P", description = "Nucleus sampling, in (0, 1] (default 1 = off).")
    float topP = 1.0f;

    @Option(names = "--top-k", paramLabel = "K", description = "Keep the K most likely tokens (default 0 = off).")
    int topK = 0;

    @Option(names = "--min-p", paramLabel = "P", description = "Drop tokens below P × the top probability.")
    float minP = 0f;

    @Option(names = "--repetition-penalty", paramLabel = "R", description = "1 = off.")
    float repetitionPenalty = 1f;

    @Option(names = "--presence-penalty", paramLabel = "X", description = "In [-2, 2].")
    float presencePenalty = 0f;

    @Option(names = "--frequency-penalty", paramLabel = "X", description = "In [-2, 2].")
    float frequencyPenalty = 0f;

    @Option(names = "--seed", paramLabel = "S", description = "Same seed, same output.")
    Long seed;

    @Option(names = "--top-logprobs", paramLabel = "K", description = "Report the K most likely alternatives.")
    int topLogprobs = 0;

    @Option(names = "--ignore-eos", description = "Keep generating past end-of-sequence tokens.")
    boolean ignoreEos;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Stop string (repeatable).")
    List<String> stop = new ArrayList<>();

    @Option(names = "--stop-token-id", paramLabel = "ID", description = "Stop token id (repeatable).")
    List<Integer> stopTokenIds = new ArrayList<>();

    SamplingParams params() {
        Set<Integer> ids = new HashSet<>(stopTokenIds);
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed, maxTokens, ids, stop, ignoreEos, topLogprobs);
    }

    /**
     * Sets the sampling fields of a gRPC request. Every field is sent explicitly, so {@code generate} samples with
     * the same defaults as {@code run} whatever the router's defaults are.
     *
     * @param logprobs ask for each token's log-probability
     */
    GenerateRequest.Builder applyTo(GenerateRequest.Builder request, boolean logprobs) {
        io.expertmesh.proto.inference.v1.SamplingParams.Builder s = io.expertmesh.proto.inference.v1.SamplingParams
                .newBuilder().setTemperature(temperature).setTopP(topP).setTopK(topK).setMinP(minP)
                .setRepetitionPenalty(repetitionPenalty).setPresencePenalty(presencePenalty)
                .setFrequencyPenalty(frequencyPenalty);
        if (seed != null) {
            s.setSeed(seed);
        }
        return request.setSampling(s).setMaxTokens(maxTokens).addAllStop(stop).addAllStopTokenIds(stopTokenIds)
                .setIgnoreEos(ignoreEos).setLogprobs(logprobs || topLogprobs > 0).setTopLogprobs(topLogprobs);
    }
}
