package io.expertmesh.core.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tokenizer of one model directory: text to ids and back, special ids, and the chat template.
 *
 * <p>Encoding and decoding run in the Hugging Face tokenizers library (through DJL's binding), so the
 * ids match what the model was trained with. What that library does not read,
 * {@code tokenizer_config.json} and {@code generation_config.json}, is applied here: BOS/EOS per
 * {@code add_bos_token}/{@code add_eos_token}, the EOS and stop ids, and the chat template.
 *
 * <p>Special tokens are added exactly once: when {@code tokenizer_config.json} says
 * {@code add_bos_token}, the native post-processor is never asked to add special tokens and BOS/EOS
 * come from here (this is what transformers does for {@code LlamaTokenizerFast}); when it does not,
 * the post-processor of {@code tokenizer.json} decides alone.
 *
 * <p>Loading never touches the network: DJL is put in offline mode first and reads files only.
 * Safe for concurrent use once loaded.
 */
public final class ModelTokenizer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ModelTokenizer.class);

    public static final String TOKENIZER_FILE = "tokenizer.json";

    static {
        // Before DJL's first use: otherwise it may try to download native libraries or tokenizers.
        System.setProperty("ai.djl.offline", "true");
    }

    private final HuggingFaceTokenizer tokenizer;
    private final Vocabulary vocabulary;
    private final TokenizerConfig config;
    private final int bosId;
    private final int eosId;
    private final Set<Integer> stopIds;
    private final ChatTemplate chatTemplate;

    private ModelTokenizer(HuggingFaceTokenizer tokenizer, Vocabulary vocabulary, TokenizerConfig config) {
        this.tokenizer = tokenizer;
        this.vocabulary = vocabulary;
        this.config = config;
        this.bosId = resolve(config.bosToken(), "bos_token");
        this.eosId = resolve(config.eosToken(), "eos_token");
        Set<Integer> stops = new LinkedHashSet<>();
        if (eosId >= 0) {
            stops.add(eosId);
        }
        stops.addAll(config.generationEosIds());
        this.stopIds = Collections.unmodifiableSet(stops);
        this.chatTemplate = config.chatTemplateIfPresent()
                .map(t -> new ChatTemplate(t, config.bosToken(), config.eosToken()))
                .orElse(null);
        if (config.addBosToken() != null && config.addBosToken() && bosId < 0) {
            throw new IllegalArgumentException("add_bos_token is set but bos_token is missing or not in the vocabulary");
        }
    }

    /**
     * Loads {@code tokenizer.json} (required) and {@code tokenizer_config.json},
     * {@code generation_config.json}, {@code chat_template.jinja} (optional) from {@code modelDir}.
     *
     * @throws NoSuchFileException when {@code modelDir} has no {@code tokenizer.json}
     * @throws IOException when a file cannot be read or parsed
     */
    public static ModelTokenizer load(Path modelDir) throws IOException {
        Path tokenizerFile = modelDir.resolve(TOKENIZER_FILE);
        if (!Files.isRegularFile(tokenizerFile)) {
            throw new NoSuchFileException(tokenizerFile.toString(), null,
                    "no " + TOKENIZER_FILE + " in model directory " + modelDir
                            + " (a Hugging Face tokenizer.json is required to encode text)");
        }
        long start = System.nanoTime();
        TokenizerConfig config = TokenizerConfig.read(modelDir);
        Vocabulary vocabulary;
        try (InputStream in = Files.newInputStream(tokenizerFile)) {
            vocabulary = Vocabulary.read(in);
        }
        HuggingFaceTokenizer tokenizer = openNative(tokenizerFile);
        try {
            ModelTokenizer loaded = new ModelTokenizer(tokenizer, vocabulary, config);
            log.info("loaded tokenizer from {} in {} ms: vocab {}, bos {}, eos {}, stop ids {}, add_bos {}, chat template {}",
                    modelDir, (System.nanoTime() - start) / 1_000_000, vocabulary.size(), loaded.bosId,
                    loaded.eosId, loaded.stopIds, config.addBosToken(), loaded.chatTemplate != null);
            return loaded;
        } catch (RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    /**
     * Loads the tokenizer of {@code modelDir} if it has a {@code tokenizer.json}; a model directory
     * without one (weights only, or a test model) gives empty.
     */
    public static Optional<ModelTokenizer> loadIfPresent(Path modelDir) throws IOException {
        if (!Files.isRegularFile(modelDir.resolve(TOKENIZER_FILE))) {
            log.debug("no {} in {}", TOKENIZER_FILE, modelDir);
            return Optional.empty();
        }
        return Optional.of(load(modelDir));
    }

    private static HuggingFaceTokenizer openNative(Path tokenizerFile) throws IOException {
        Map<String, String> options = Map.of(
                "addSpecialTokens", "false", // every call says explicitly; see encode
                "truncation", "false",       // DJL truncates to 512 by default
                "padding", "false",
                "modelMaxLength", String.valueOf(Integer.MAX_VALUE));
        try (InputStream in = Files.newInputStream(tokenizerFile)) {
            // The stream overload reads no tokenizer_config.json, so DJL applies none of its own defaults.
            return HuggingFaceTokenizer.newInstance(in, options);
        } catch (RuntimeException e) {
            throw new IOException("cannot load " + tokenizerFile + ": " + e.getMessage(), e);
        }
    }

    private int resolve(String token, String name) {
        if (token == null) {
            return -1;
        }
        OptionalInt id = vocabulary.id(token);
        if (id.isEmpty()) {
            throw new IllegalArgumentException(name + " '" + token + "' is not in the vocabulary");
        }
        return id.getAsInt();
    }

    /** Encodes {@code text} with the model's special tokens (BOS for DeepSeek-V3), ready for a fresh sequence. */
    public int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * Encodes {@code text}. With {@code addSpecial} the model's special tokens are added once (see the
     * class comment); without, only the text's own tokens, e.g. for a prompt rendered by
     * {@link #applyChatTemplate} that already starts with BOS. Special-token strings inside
     * {@code text} are always recognised as their ids.
     */
    public int[] encode(String text, boolean addSpecial) {
        if (text == null) {
            throw new IllegalArgumentException("text must not be null");
        }
        boolean configDecides = config.addBosToken() != null;
        long[] raw = tokenizer.encode(text, addSpecial && !configDecides, false).getIds();
        boolean bos = addSpecial && configDecides && config.addBosToken();
        boolean eos = addSpecial && Boolean.TRUE.equals(config.addEosToken()) && eosId >= 0;
        int[] ids = new int[raw.length + (bos ? 1 : 0) + (eos ? 1 : 0)];
        int at = 0;
        if (bos) {
            ids[at++] = bosId;
        }
        for (long id : raw) {
            ids[at++] = (int) id;
        }
        if (eos) {
            ids[at] = eosId;
        }
        return ids;
    }

    /** Decodes {@code ids} to text, special tokens included (as transformers' default). */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * Decodes {@code ids} to text. Ids the vocabulary does not have decode to nothing.
     *
     * @param skipSpecialTokens leave out tokens marked special (BOS, EOS, padding)
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] raw = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0) {
                throw new IllegalArgumentException("negative token id " + ids[i] + " at position " + i);
            }
            raw[i] = ids[i];
        }
        return tokenizer.decode(raw, skipSpecialTokens);
    }

    /** Id of {@code bos_token}, or -1 when the model has none. */
    public int bosId() {
        return bosId;
    }

    /** Id of {@code eos_token}, or -1 when the model has none. */
    public int eosId() {
        return eosId;
    }

    /** Ids that end generation: EOS plus {@code eos_token_id} of {@code generation_config.json}. */
    public Set<Integer> stopIds() {
        return stopIds;
    }

    /** Number of ids the tokenizer can produce (vocabulary plus added tokens); the model's embedding may be larger. */
    public int vocabSize() {
        return vocabulary.size();
    }

    /** The raw token string of {@code id} (e.g. {@code "Ġworld"} in byte-level BPE), or {@code null} if unknown. */
    public String tokenText(int id) {
        return vocabulary.token(id);
    }

    /** The id of a token string (e.g. {@code "<｜User｜>"}), if it is one token. */
    public OptionalInt tokenId(String token) {
        return vocabulary.id(token);
    }

    public boolean isSpecial(int id) {
        return vocabulary.isSpecial(id);
    }

    public boolean hasChatTemplate() {
        return chatTemplate != null;
    }

    /**
     * Renders a conversation with the model's chat template. The result already holds BOS when the
     * template writes it (DeepSeek-V3's does), so encode it with {@code encode(prompt, false)}, or
     * use {@link #encodeChat}.
     *
     * @throws IllegalArgumentException when the conversation is empty or the template rejects it
     * @throws IllegalStateException when the model ships no chat template
     */
    public String applyChatTemplate(List<ChatMessage> messages, boolean addGenerationPrompt) {
        if (chatTemplate == null) {
            throw new IllegalStateException("this model's tokenizer has no chat template");
        }
        return chatTemplate.render(messages, addGenerationPrompt);
    }

    /** Renders and encodes a conversation without adding special tokens a second time. */
    public int[] encodeChat(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return encode(applyChatTemplate(messages, addGenerationPrompt), false);
    }

    /** Starts an {@link IncrementalDetokenizer} for one generated sequence. */
    public IncrementalDetokenizer newDetokenizer(boolean skipSpecialTokens) {
        return new IncrementalDetokenizer(this, skipSpecialTokens);
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
