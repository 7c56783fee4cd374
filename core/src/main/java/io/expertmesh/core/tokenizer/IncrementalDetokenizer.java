package io.expertmesh.core.tokenizer;

import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns generated token ids, fed one at a time, into text deltas for streaming.
 *
 * <p>Decoding each token alone is wrong twice: byte-level BPE splits a multi-byte UTF-8 character
 * across tokens (an emoji is often three), and decoders that strip a leading space or merge pieces
 * give different text for a token alone than in context. So, as vLLM does, this decodes a short window
 * of tokens already emitted ({@code prefixOffset..readOffset}) together with the new ones, emits only
 * what the window adds, and holds back while the decoded text ends in U+FFFD (an incomplete
 * character). The deltas concatenated equal {@link ModelTokenizer#decode} of all ids, once
 * {@link #flush()} has returned the rest.
 *
 * <p>One instance per sequence; not thread-safe.
 */
public final class IncrementalDetokenizer {
    private static final Logger log = LoggerFactory.getLogger(IncrementalDetokenizer.class);

    /** Prompt tokens kept as left context, as vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET. */
    static final int PROMPT_CONTEXT = 5;
    private static final char REPLACEMENT = '\uFFFD';
    private static final int COMPACT_AT = 4096;

    private final ModelTokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private int[] ids = new int[64];
    private int size;
    /** Start of the window decoded as left context. */
    private int prefixOffset;
    /** End of what has been emitted. */
    private int readOffset;
    private int generated;

    /** A detokenizer for a sequence whose generated text starts from nothing. */
    public IncrementalDetokenizer(ModelTokenizer tokenizer, boolean skipSpecialTokens) {
        this(tokenizer, new int[0], skipSpecialTokens);
    }

    /**
     * A detokenizer that continues after {@code promptIds}: their last few tokens are left context
     * (so a leading space or a merge across the boundary comes out as in the full text) and are
     * never emitted.
     */
    public IncrementalDetokenizer(ModelTokenizer tokenizer, int[] promptIds, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
        int from = Math.max(promptIds.length - PROMPT_CONTEXT, 0);
        for (int i = from; i < promptIds.length; i++) {
            append(promptIds[i]);
        }
        this.prefixOffset = 0;
        this.readOffset = size;
    }

    /** Feeds the next generated id; returns the text it completes, possibly empty. */
    public String add(int id) {
        if (id < 0) {
            throw new IllegalArgumentException("negative token id " + id);
        }
        append(id);
        generated++;
        String prefixText = decode(prefixOffset, readOffset);
        String fullText = decode(prefixOffset, size);
        if (fullText.length() > prefixText.length() && fullText.charAt(fullText.length() - 1) != REPLACEMENT) {
            String delta = suffixAfter(prefixText, fullText);
            prefixOffset = readOffset;
            readOffset = size;
            compact();
            return delta;
        }
        return "";
    }

    /** Returns whatever is still held back (an incomplete character comes out as U+FFFD, as in decode). */
    public String flush() {
        if (readOffset == size) {
            return "";
        }
        String prefixText = decode(prefixOffset, readOffset);
        String fullText = decode(prefixOffset, size);
        prefixOffset = readOffset;
        readOffset = size;
        return fullText.length() > prefixText.length() ? suffixAfter(prefixText, fullText) : "";
    }

    /** Number of generated ids fed so far. */
    public int generatedCount() {
        return generated;
    }

    private String suffixAfter(String prefixText, String fullText) {
        if (fullText.startsWith(prefixText)) {
            return fullText.substring(prefixText.length());
        }
        // The decoder changed text already emitted (should not happen for byte-level BPE); emitted
        // text cannot be taken back, so emit from where the two first differ.
        int common = 0;
        while (common < prefixText.length() && prefixText.charAt(common) == fullText.charAt(common)) {
            common++;
        }
        log.warn("decoder rewrote emitted text: '{}' became '{}'", prefixText, fullText);
        return fullText.substring(common);
    }

    private String decode(int from, int to) {
        return from == to ? "" : tokenizer.decode(Arrays.copyOfRange(ids, from, to), skipSpecialTokens);
    }

    private void append(int id) {
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, size * 2);
        }
        ids[size++] = id;
    }

    /** Drops ids left of the window so a long generation does not keep every id. */
    private void compact() {
        if (prefixOffset < COMPACT_AT) {
            return;
        }
        System.arraycopy(ids, prefixOffset, ids, 0, size - prefixOffset);
        size -= prefixOffset;
        readOffset -= prefixOffset;
        prefixOffset = 0;
    }
}
