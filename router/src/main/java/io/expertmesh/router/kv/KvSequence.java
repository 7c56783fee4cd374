package io.expertmesh.router.kv;

/**
 * What the KV cache needs of a sequence: its tokens, its computed and cached counts, its block table and the
 * distributed tier's hits found for it at submit. The scheduler's {@code SequenceState} is one; this interface
 * keeps the dependency one-way (scheduler → kv).
 */
public interface KvSequence {
    String requestId();

    /** Prompt tokens plus generated ones. */
    int numTokens();

    int numPromptTokens();

    /** The most tokens the sequence may ever hold (prompt + max new tokens). */
    int maxTotalTokens();

    /** Copies tokens {@code [from, from + len)} into {@code dst} at {@code off}. */
    void copyTokens(int from, int len, int[] dst, int off);

    int numComputedTokens();

    void setNumComputedTokens(int n);

    void setNumCachedTokens(int n);

    /** The sequence's block table; null until {@link #attachBlockTable}. */
    BlockTable blockTable();

    void attachBlockTable(BlockTable table);

    /** The distributed tier's blocks found for it at submit, handed over once ({@link RemoteKvTier.Hits#NONE}). */
    RemoteKvTier.Hits takeRemoteHits();
}
