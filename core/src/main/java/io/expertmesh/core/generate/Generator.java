package io.expertmesh.core.generate;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Generates one sequence in this process: chunked prefill, then one decode step per token, sampling, stop rules
 * and incremental detokenisation. This is the single-process path of {@code expertmesh run}; the router's
 * scheduler batches many sequences with the same pieces. One generation at a time.
 */
public final class Generator {
    /** Prompt tokens per prefill step: bounds the step's scratch memory for long prompts. */
    static final int PREFILL_CHUNK = 512;

    private final Transformer model;
    private final ForwardBackend backend;
    private final ForwardBackend.Runner runner;
    private final ModelTokenizer tokenizer;
    private final Set<Integer> eosIds;

    /** @param tokenizer may be null (a model directory without tokenizer files): events then carry no text */
    public Generator(Transformer model, ModelTokenizer tokenizer) {
        this(model, tokenizer, ForwardBackend.CPU.create(model, 1, 1, null));
    }

    /** Generates with the forward steps on {@code backend} (a GPU's device-resident pass). */
    public Generator(Transformer model, ModelTokenizer tokenizer, ForwardBackend backend) {
        this.model = model;
        this.backend = backend;
        this.runner = backend.newRunner();
        this.tokenizer = tokenizer;
        Set<Integer> eos = new HashSet<>(model.config().eosTokenIds());
        if (tokenizer != null) {
            eos.addAll(tokenizer.stopIds());
        }
        this.eosIds = Set.copyOf(eos);
    }

    /** Checks a prompt against the model; the message says what is wrong. */
    public void validate(int[] prompt, SamplingParams params) {
        ModelConfig c = model.config();
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt is empty");
        }
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= c.vocabSize()) {
                throw new IllegalArgumentException("prompt token " + i + " is " + prompt[i]
                        + ", outside the vocabulary [0, " + c.vocabSize() + ")");
            }
        }
        if (prompt.length >= c.maxPositions()) {
            throw new IllegalArgumentException("prompt has " + prompt.length + " tokens; the context holds "
                    + c.maxPositions() + " including at least one generated token");
        }
    }

    /** Runs the prompt and streams tokens to {@code sink} until a stop rule, max tokens or the context limit. */
    public GenerationResult generate(int[] prompt, SamplingParams params, Consumer<TokenEvent> sink) {
        validate(prompt, params);
        ModelConfig c = model.config();
        int capacity = Math.min(c.maxPositions(), prompt.length + params.maxTokens());
        KvCache cache = backend.newCache(capacity);
        try {
            return generate(prompt, params, sink, cache, capacity);
        } finally {
            backend.release(cache);
        }
    }

    private GenerationResult generate(int[] prompt, SamplingParams params, Consumer<TokenEvent> sink,
                                      KvCache cache, int capacity) {
        ModelConfig c = model.config();
        int vocab = c.vocabSize();
        TokenStepper stepper = new TokenStepper(prompt, params, tokenizer, eosIds, capacity, true, null);

        long start = System.nanoTime();
        float[] logits = new float[vocab];
        for (int from = 0; from < prompt.length; from += PREFILL_CHUNK) {
            int to = Math.min(prompt.length, from + PREFILL_CHUNK);
            int[] chunk = Arrays.copyOfRange(prompt, from, to);
            int[] rows = to == prompt.length ? new int[]{chunk.length - 1} : new int[0];
            runner.forward(ForwardBatch.ofSequence(chunk, from, cache, rows), logits);
        }
        long firstToken = 0;
        int[] one = new int[1];
        while (true) {
            int position = prompt.length + stepper.generated();
            TokenEvent event = stepper.next(logits, 0, vocab, position);
            if (event.index() == 0) {
                firstToken = System.nanoTime();
            }
            sink.accept(event);
            if (stepper.finished()) {
                break;
            }
            one[0] = event.tokenId();
            runner.forward(ForwardBatch.ofSequence(one, position, cache, 0), logits);
        }
        long end = System.nanoTime();
        return new GenerationResult(stepper.decision().finishReason(), prompt.length, stepper.generated(),
                stepper.text(), firstToken - start, end - firstToken);
    }
}
