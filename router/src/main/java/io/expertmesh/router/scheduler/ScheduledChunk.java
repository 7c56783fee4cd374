package io.expertmesh.router.scheduler;

/**
 * Tokens {@code [start, start+numTokens)} of {@code seq} to run this step. {@code needsLogits} when the chunk
 * reaches the end of the sequence's known tokens ({@code start+numTokens == seq.numTokens()}): its last row
 * produces the next token. A decode is a chunk of one token; a prefill may be split into several chunks.
 */
public record ScheduledChunk(SequenceState seq, int start, int numTokens, boolean needsLogits) {

    public ScheduledChunk {
        if (start < 0 || numTokens <= 0) {
            throw new IllegalArgumentException("bad chunk [" + start + ", +" + numTokens + ")");
        }
    }

    /** Position after the chunk's last token. */
    public int end() {
        return start + numTokens;
    }
}
