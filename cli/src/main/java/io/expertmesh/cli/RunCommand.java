package io.expertmesh.cli;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.generate.GenerationResult;
import io.expertmesh.core.generate.Generator;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.cuda.forward.DeviceForward;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code expertmesh run}: the whole model in this process, streaming the completion. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run a model in this process and stream its completion.")
final class RunCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();
    @Mixin
    PromptOptions prompt = new PromptOptions();
    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Spec
    CommandSpec spec;

    @Option(names = "--json", description = "One JSON object per token per line, then a summary line.")
    boolean json;

    /** Positions per KV block of the device pass (one sequence: small blocks waste little). */
    private static final int KV_BLOCK = 16;

    @Override
    public Integer call() throws Exception {
        SamplingParams params = sampling.params();
        prompt.validate(); // before the load, which takes seconds
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (LoadedModel loaded = model.load(err)) {
            ModelTokenizer tokenizer = loaded.tokenizer().orElse(null);
            int[] ids = prompt.tokens(tokenizer);
            // The device pass holds the KV blocks of this one sequence; the CPU's cache is sized by the generator.
            int capacity = Math.min(loaded.config().maxPositions(), ids.length + params.maxTokens());
            try (ForwardBackend backend = model.forwardBackend().create(loaded.transformer(),
                    DeviceForward.blocksFor(capacity, KV_BLOCK), KV_BLOCK, null)) {
                generate(new Generator(loaded.transformer(), tokenizer, backend), ids, params, tokenizer, out, err);
            }
        }
        return 0;
    }

    private void generate(Generator generator, int[] ids, SamplingParams params, ModelTokenizer tokenizer,
                          PrintWriter out, PrintWriter err) {
        JsonLines lines = new JsonLines(out);
        GenerationResult result = generator.generate(ids, params, e -> {
            if (json) {
                lines.token(e.index(), e.tokenId(), e.text(), e.logprob(), e.topLogprobs().stream()
                        .map(t -> new JsonLines.Alternative(t.tokenId(), t.logprob())).toList());
            } else if (tokenizer != null) {
                out.print(e.text());
                out.flush();
            } else {
                out.print((e.index() == 0 ? "" : " ") + e.tokenId());
                out.flush();
            }
        });
        if (json) {
            lines.summary(summary(result));
        } else {
            out.println();
            err.printf("[%s] prompt %d tokens, completion %d tokens, TTFT %.1f ms, prefill %.1f tok/s, "
                            + "decode %.1f tok/s%n", result.finishReason().wireName(), result.promptTokens(),
                    result.completionTokens(), result.ttftNanos() / 1e6, result.prefillTokensPerSecond(),
                    result.decodeTokensPerSecond());
            err.flush();
        }
    }

    private static JsonLines.Summary summary(GenerationResult r) {
        return new JsonLines.Summary(r.finishReason().wireName(), r.promptTokens(), r.completionTokens(), 0,
                r.ttftNanos() / 1e6, r.decodeNanos() / 1e6, r.prefillTokensPerSecond(), r.decodeTokensPerSecond());
    }
}
