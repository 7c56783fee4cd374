package io.expertmesh.router.service;

import io.expertmesh.proto.inference.v1.ChatPrompt;

/**
 * The most UTF-8 bytes of prompt text worth tokenizing: the context length times {@value #BYTES_PER_TOKEN}.
 * Tokenizing costs time in proportion to the text (seconds for megabytes), so text that cannot fit the context is
 * refused by its byte length, before any of that work. Ordinary text runs 2-6 bytes per token; only long runs of
 * one character (a token of the DeepSeek-V3 vocabulary holds up to 128 spaces) pack more, and a prompt made of
 * those can still be sent as token ids.
 */
final class PromptTextLimit {
    static final int BYTES_PER_TOKEN = 32;

    private final int contextTokens;
    private final long maxBytes;

    PromptTextLimit(int contextTokens) {
        this.contextTokens = contextTokens;
        this.maxBytes = (long) contextTokens * BYTES_PER_TOKEN;
    }

    long maxBytes() {
        return maxBytes;
    }

    /** True when {@code bytes} of text may be tokenized; otherwise adds a violation of {@code field}. */
    boolean check(String field, long bytes, InvalidRequest bad) {
        if (bytes <= maxBytes) {
            return true;
        }
        bad.add(field, "prompt text is " + bytes + " bytes; the context of " + contextTokens + " tokens takes at most "
                + maxBytes + " bytes of text (" + BYTES_PER_TOKEN + " per token); send token_ids for denser text");
        return false;
    }

    /** The UTF-8 bytes of a chat's roles and contents: what its template renders, less the template's own text. */
    static long bytesOf(ChatPrompt chat) {
        long n = 0;
        for (var m : chat.getMessagesList()) {
            n += m.getRoleBytes().size() + m.getContentBytes().size();
        }
        return n;
    }
}
