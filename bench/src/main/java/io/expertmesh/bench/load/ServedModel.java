package io.expertmesh.bench.load;

/**
 * What a benchmark needs to know of the served model to build its requests.
 *
 * @param id         the model's name as the server gives it
 * @param vocabSize  prompt token ids are drawn from {@code [0, vocabSize)}; 0 when the server does not say
 * @param maxContext prompt plus output must fit in this many tokens; 0 when the server does not say
 */
public record ServedModel(String id, int vocabSize, int maxContext) {
}
