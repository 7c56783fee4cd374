package io.expertmesh.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.eval.LogitSummaries;
import io.expertmesh.core.eval.Perplexity;
import io.expertmesh.core.eval.PerplexityResult;
import io.expertmesh.core.eval.PerplexityWindows;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.router.experts.DispatchObserver;
import io.expertmesh.router.experts.ExpertCluster;
import io.expertmesh.router.experts.ExpertClusterConfig;
import io.expertmesh.router.experts.WireFormat;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.IntConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code expertmesh perplexity}: how well a model predicts a text, the llama.cpp {@code llama-perplexity} way, plus
 * bits per byte (comparable across tokenizers) and the KL divergence against a saved base run (how much a
 * quantization or another device changes the model's predictions).
 */
@Command(name = "perplexity", mixinStandardHelpOptions = true,
        description = {"Score a text with a model: token count, mean NLL, perplexity and bits per byte.",
                "The text is cut into windows of --context tokens (each starting with BOS); without --stride the "
                        + "windows do not overlap and the second half of each is scored (llama.cpp's "
                        + "llama-perplexity), with --stride S windows start every S tokens and their last S are scored."})
final class PerplexityCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();
    @Mixin
    WorkerTlsOptions workerTls = new WorkerTlsOptions();

    @Spec
    CommandSpec spec;

    @Option(names = "--file", paramLabel = "TEXT", required = true, description = "UTF-8 text to score.")
    Path file;

    @Option(names = "--context", paramLabel = "N", description = "Tokens per window, BOS included (default 512).")
    int context = 512;

    @Option(names = "--stride", paramLabel = "N",
            description = "Start a window every N tokens and score its last N (default: non-overlapping windows, "
                    + "second half scored).")
    int stride;

    @Option(names = "--json", description = "Print one JSON object: tokens, bytes, mean_nll, perplexity, "
            + "bits_per_byte (and kl_divergence with --kl-divergence).")
    boolean json;

    @Option(names = "--kl-divergence-base", paramLabel = "FILE",
            description = "Without --kl-divergence: save every scored token's top logits and log-sum-exp here. "
                    + "With it: compare this run against the saved one.")
    Path klBase;

    @Option(names = "--kl-divergence",
            description = "Report the mean and p99 KL divergence and the top-1 agreement against --kl-divergence-base "
                    + "(made by an earlier run on the same text with, e.g., another --quantize or --device).")
    boolean klCompare;

    @Option(names = "--workers", paramLabel = "HOST:PORT,...", split = ",",
            description = "Expert workers (`expertmesh worker --experts none`) that run the routed experts, as a "
                    + "router's would; without, everything runs in this process.")
    List<String> workers = new ArrayList<>();

    @Option(names = "--expert-wire", paramLabel = "FORMAT",
            description = "With --workers: exact (default; bit-identical to one process) or bf16.")
    WireFormat expertWire = WireFormat.EXACT;

    @Override
    public Integer call() throws Exception {
        if (klCompare && klBase == null) {
            throw new IllegalArgumentException("--kl-divergence needs --kl-divergence-base FILE (the saved base run)");
        }
        if (klCompare && !Files.isRegularFile(klBase)) {
            throw new IllegalArgumentException("--kl-divergence-base " + klBase + " does not exist; make it first with "
                    + "a run without --kl-divergence");
        }
        String text = readText(file);   // before the load: a bad file fails in a moment
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Path dir = model.resolveModelDir();
        ForwardBackend.Factory backendFactory = model.forwardBackend();
        ExpertCluster cluster = null;
        try {
            ModelBuilder.RoutedExpertsFactory routed = null;
            if (!workers.isEmpty()) {
                ExpertClusterConfig cc = ExpertClusterConfig.of(workers.stream().map(String::strip)
                        .filter(w -> !w.isEmpty()).toList(), 0).withWire(expertWire).withMicroBatches(1);
                cluster = new ExpertCluster(ModelConfig.load(dir), cc, workerTls.channels(), DispatchObserver.NONE);
                cluster.start();
                routed = cluster.routedExperts();
            }
            try (LoadedModel loaded = LoadedModel.open(dir, model.newCpuKernels(), (a, b) -> { }, routed,
                    model.quantization())) {
                ModelTokenizer tokenizer = loaded.tokenizer().orElseThrow(() -> new IllegalArgumentException(
                        "the model at " + dir + " has no tokenizer.json, so it cannot read a text"));
                int[] tokens = tokenizer.encode(text, false);
                PerplexityWindows windows = PerplexityWindows.of(tokens.length, context, stride);
                // A model without BOS (Qwen) starts each window with its end-of-text token, as GPT-2-style models do.
                int bos = tokenizer.bosId() >= 0 ? tokenizer.bosId() : tokenizer.eosId();
                if (bos < 0) {
                    throw new IllegalArgumentException("the tokenizer has neither a BOS nor an EOS token to start a "
                            + "window with");
                }
                try (ForwardBackend backend = backendFactory.create(loaded.transformer(),
                        DeviceForward.blocksFor(context, 16), 16, null)) {
                    Perplexity scorer = new Perplexity(backend, loaded.config().vocabSize(), bos,
                            ids -> tokenizer.decode(ids, true));
                    PerplexityResult result = score(scorer, tokens, windows, err);
                    print(result, windows, out);
                }
            }
        } finally {
            if (cluster != null) {
                cluster.close();
            }
        }
        return 0;
    }

    private PerplexityResult score(Perplexity scorer, int[] tokens, PerplexityWindows windows, PrintWriter err)
            throws IOException {
        boolean tty = System.console() != null && !json;
        try (ProgressBar bar = tty ? new ProgressBarBuilder().setTaskName("perplexity").setInitialMax(windows.count())
                .setStyle(ProgressBarStyle.ASCII).setUnit(" windows", 1).continuousUpdate().build() : null) {
            IntConsumer progress = bar == null ? done -> { } : bar::stepTo;
            if (klBase == null) {
                return scorer.run(tokens, windows, null, null, progress);
            }
            if (klCompare) {
                try (LogitSummaries.Reader base = new LogitSummaries.Reader(klBase)) {
                    return scorer.run(tokens, windows, null, base, progress);
                }
            }
            try (LogitSummaries.Writer save = new LogitSummaries.Writer(klBase, scorer.header(tokens, windows))) {
                PerplexityResult r = scorer.run(tokens, windows, save, null, progress);
                err.println("saved the top " + LogitSummaries.TOP_K + " logits of " + r.tokens() + " tokens to "
                        + klBase);
                return r;
            }
        }
    }

    private void print(PerplexityResult r, PerplexityWindows w, PrintWriter out) {
        if (json) {
            ObjectNode o = new ObjectMapper().createObjectNode();
            o.put("tokens", r.tokens()).put("bytes", r.bytes()).put("windows", r.windows())
                    .put("context", w.context()).put("mean_nll", r.meanNll()).put("perplexity", r.perplexity())
                    .put("bits_per_byte", r.bitsPerByte());
            if (r.kl() != null) {
                o.putObject("kl_divergence").put("mean", r.kl().mean()).put("p99", r.kl().p99())
                        .put("top1_agreement", r.kl().top1Agreement()).put("base_mean_nll", r.kl().baseMeanNll());
            }
            out.println(o);
        } else {
            out.printf("%d tokens (%d bytes) scored in %d windows of %d%n", r.tokens(), r.bytes(), r.windows(),
                    w.context());
            out.printf("mean NLL %.4f, perplexity %.3f, bits per byte %.4f%n", r.meanNll(), r.perplexity(),
                    r.bitsPerByte());
            if (r.kl() != null) {
                out.printf("against the base: mean KL %.6f, p99 KL %.6f, top-1 agreement %.2f%% (base mean NLL %.4f)%n",
                        r.kl().mean(), r.kl().p99(), 100 * r.kl().top1Agreement(), r.kl().baseMeanNll());
            }
        }
        out.flush();
    }

    /** The file as strict UTF-8; empty or not UTF-8 is a user error (one line, exit 2). */
    static String readText(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("--file " + file + " does not exist or is not a file");
        }
        byte[] bytes = Files.readAllBytes(file);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("--file " + file + " is not UTF-8 text (" + e.getMessage() + ")");
        }
        if (text.isBlank()) {
            throw new IllegalArgumentException("--file " + file + " is empty");
        }
        return text;
    }
}
