package io.expertmesh.gpucheck;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.generate.Generator;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.sample.SamplingParams;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Greedy generation of one model with two kernel sets: the token ids must be identical. */
public final class GreedyComparison {
    private GreedyComparison() {
    }

    public static List<Integer> greedy(Path modelDir, Kernels kernels, int[] prompt, int tokens) throws IOException {
        try (LoadedModel model = LoadedModel.open(modelDir, kernels, (a, b) -> { })) {
            List<Integer> ids = new ArrayList<>();
            new Generator(model.transformer(), null).generate(prompt,
                    SamplingParams.greedy().withMaxTokens(tokens).withIgnoreEos(true), e -> ids.add(e.tokenId()));
            return ids;
        }
    }

    /** Passes (error 0) when the token lists are equal; the detail shows both. */
    public static CheckResult compare(Path modelDir, Kernels gpu, Kernels cpu, int[] prompt, int tokens)
            throws IOException {
        List<Integer> want = greedy(modelDir, cpu, prompt, tokens);
        List<Integer> got = greedy(modelDir, gpu, prompt, tokens);
        int firstDiff = -1;
        for (int i = 0; i < Math.max(want.size(), got.size()); i++) {
            if (i >= want.size() || i >= got.size() || !want.get(i).equals(got.get(i))) {
                firstDiff = i;
                break;
            }
        }
        String detail = firstDiff < 0 ? "tokens " + got
                : "first difference at token " + firstDiff + ": gpu " + got + " cpu " + want;
        return new CheckResult("greedy " + modelDir.getParent().getFileName() + "/" + modelDir.getFileName()
                + " prompt " + Arrays.toString(prompt), firstDiff < 0 ? 0 : Double.NaN, 0, detail);
    }
}
