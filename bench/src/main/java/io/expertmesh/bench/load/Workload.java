package io.expertmesh.bench.load;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * The requests of a benchmark: prompts of random token ids in {@code [0, vocab)} (so no tokenizer is needed) and
 * output lengths drawn from distributions, all from one seed.
 *
 * <p>With prefix groups, request {@code i} belongs to group {@code i % groups} and its prompt is that group's
 * {@code prefixLen}-token prefix followed by its own suffix of {@code inputLen} tokens, which exercises the
 * router's prefix cache.
 *
 * <p>Clamping: a prompt longer than {@code context - 1} loses suffix tokens until one output token fits; then the
 * output length is cut to what the context leaves ({@code prompt + output <= context}).
 *
 * @param inputLen    prompt length (without the shared prefix)
 * @param outputLen   output length (sent as {@code max_tokens})
 * @param prefixGroups number of prefix groups (0: no shared prefixes)
 * @param prefixLen   tokens of each group's shared prefix
 * @param vocab       token ids are drawn from {@code [0, vocab)}
 * @param context     the model's context (prompt plus output)
 * @param seed        seed of everything random in the workload
 */
public record Workload(LengthDistribution inputLen, LengthDistribution outputLen, int prefixGroups, int prefixLen,
                       int vocab, int context, long seed) {

    /** One request: the prompt ids, {@code max_tokens}, and its prefix group (-1 for none). */
    public record Item(int[] promptIds, int maxTokens, int group) {
    }

    public Workload {
        Objects.requireNonNull(inputLen, "inputLen");
        Objects.requireNonNull(outputLen, "outputLen");
        if (vocab < 1) {
            throw new IllegalArgumentException("vocabulary size must be >= 1, got " + vocab);
        }
        if (context < 2) {
            throw new IllegalArgumentException("context must be >= 2 tokens, got " + context);
        }
        if (prefixGroups < 0 || prefixLen < 0) {
            throw new IllegalArgumentException("--prefix-groups and --prefix-len must be >= 0");
        }
        if ((prefixGroups > 0) != (prefixLen > 0)) {
            throw new IllegalArgumentException("--prefix-groups and --prefix-len go together (both > 0)");
        }
        if (prefixLen > context - 2) {
            throw new IllegalArgumentException("--prefix-len " + prefixLen + " leaves no room in the context of "
                    + context + " tokens for a suffix and an output token");
        }
    }

    /** The first {@code n} requests (the same for the same seed, whatever {@code n}). */
    public List<Item> generate(int n) {
        SplittableRandom random = new SplittableRandom(seed);
        int[][] prefixes = new int[prefixGroups][];
        for (int g = 0; g < prefixGroups; g++) {
            prefixes[g] = randomIds(random, prefixLen);
        }
        List<Item> items = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int group = prefixGroups == 0 ? -1 : i % prefixGroups;
            int suffix = inputLen.sample(random);
            int wantedOut = outputLen.sample(random);
            suffix = Math.min(suffix, context - 1 - prefixLen);
            int promptLen = prefixLen + suffix;
            int out = Math.min(wantedOut, context - promptLen);
            int[] prompt = new int[promptLen];
            if (group >= 0) {
                System.arraycopy(prefixes[group], 0, prompt, 0, prefixLen);
            }
            int[] own = randomIds(random, suffix);
            System.arraycopy(own, 0, prompt, prefixLen, suffix);
            items.add(new Item(prompt, out, group));
        }
        return items;
    }

    private int[] randomIds(SplittableRandom random, int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }
}
