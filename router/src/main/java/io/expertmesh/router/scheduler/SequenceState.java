package io.expertmesh.router.scheduler;

import io.expertmesh.core.model.KvCache;
import io.expertmesh.router.kv.BlockTable;
import io.expertmesh.router.kv.KvSequence;
import io.expertmesh.router.kv.RemoteKvTier;
import java.util.Arrays;

/**
 * One request's token state: its prompt and output tokens (in one array sized for the request's limit, so
 * appending never allocates), how many have their KV in the cache, and its block table.
 *
 * <p>The mutators marked "scheduler/KV manager only" are public because the scheduler and the KV manager live
 * in different packages; the engine itself only calls {@link #appendToken}. Single-threaded: the engine's step
 * thread owns every sequence.
 */
public final class SequenceState implements KvSequence {
    private static final KvCache NO_CACHE = new KvCache() {
        @Override
        public float[] array(int layer, int pos) {
            throw new IllegalStateException("sequence holds no KV blocks");
        }

        @Override
        public int offset(int pos) {
            throw new IllegalStateException("sequence holds no KV blocks");
        }

        @Override
        public int contiguousRows(int pos) {
            throw new IllegalStateException("sequence holds no KV blocks");
        }

        @Override
        public int capacity() {
            return 0;
        }
    };

    private final String requestId;
    private final int numPromptTokens;
    private final int[] tokens;
    private final long arrivalOrder;
    private int numTokens;
    private int numComputedTokens;
    private int numCachedTokens;
    private SequenceStatus status = SequenceStatus.WAITING;
    private BlockTable blockTable;
    private RemoteKvTier.Hits remoteHits = RemoteKvTier.Hits.NONE;

    /**
     * @param maxTotalTokens prompt plus the most output tokens it may produce; the block table never needs
     *                       more, and {@link #appendToken} refuses beyond it
     * @param arrivalOrder   FCFS order (smaller arrived earlier); also decides who is preempted (the largest)
     */
    public SequenceState(String requestId, int[] promptTokens, int maxTotalTokens, long arrivalOrder) {
        if (promptTokens.length == 0) {
            throw new IllegalArgumentException("request " + requestId + ": empty prompt");
        }
        if (maxTotalTokens < promptTokens.length) {
            throw new IllegalArgumentException("request " + requestId + ": maxTotalTokens " + maxTotalTokens
                    + " < prompt length " + promptTokens.length);
        }
        this.requestId = requestId;
        this.numPromptTokens = promptTokens.length;
        this.tokens = Arrays.copyOf(promptTokens, maxTotalTokens);
        this.numTokens = promptTokens.length;
        this.arrivalOrder = arrivalOrder;
    }

    public String requestId() {
        return requestId;
    }

    /** A copy of the prompt. */
    public int[] promptTokens() {
        return Arrays.copyOf(tokens, numPromptTokens);
    }

    public int numPromptTokens() {
        return numPromptTokens;
    }

    /** Prompt plus output tokens so far. */
    public int numTokens() {
        return numTokens;
    }

    /** Token {@code i}: the prompt, then the outputs. */
    public int tokenAt(int i) {
        if (i < 0 || i >= numTokens) {
            throw new IndexOutOfBoundsException("token " + i + " of " + numTokens);
        }
        return tokens[i];
    }

    /** Copies tokens {@code [from, from+len)} into {@code dst[off, ...)}. */
    public void copyTokens(int from, int len, int[] dst, int off) {
        if (from < 0 || len < 0 || from + len > numTokens) {
            throw new IndexOutOfBoundsException("tokens [" + from + ", " + (from + len) + ") of " + numTokens);
        }
        System.arraycopy(tokens, from, dst, off, len);
    }

    public int maxTotalTokens() {
        return tokens.length;
    }

    public int numOutputTokens() {
        return numTokens - numPromptTokens;
    }

    /** Appends a sampled token (the engine, after a step whose chunk {@code needsLogits}). */
    public void appendToken(int token) {
        if (numTokens == tokens.length) {
            throw new IllegalStateException("request " + requestId + " already holds its limit of "
                    + tokens.length + " tokens");
        }
        tokens[numTokens++] = token;
    }

    /** Tokens whose KV is in the cache. */
    public int numComputedTokens() {
        return numComputedTokens;
    }

    /**
     * Tokens served by the prefix cache at the last admission (after a preemption this may include output
     * tokens the sequence had computed before).
     */
    public int numCachedTokens() {
        return numCachedTokens;
    }

    /** The view over the block table that attention reads and writes; capacity 0 before any allocation. */
    public KvCache kvCache() {
        return blockTable == null ? NO_CACHE : blockTable;
    }

    public SequenceStatus status() {
        return status;
    }

    public long arrivalOrder() {
        return arrivalOrder;
    }

    /** Scheduler/KV manager only. */
    public BlockTable blockTable() {
        return blockTable;
    }

    /** KV manager only: attaches the table on first allocation. */
    public void attachBlockTable(BlockTable table) {
        if (blockTable != null && blockTable != table) {
            throw new IllegalStateException("request " + requestId + " already has a block table");
        }
        this.blockTable = table;
    }

    /** Scheduler/KV manager only. */
    public void setNumComputedTokens(int n) {
        if (n < 0 || n > numTokens) {
            throw new IllegalArgumentException("computed tokens " + n + " outside [0, " + numTokens + "]");
        }
        this.numComputedTokens = n;
    }

    /** KV manager only. */
    public void setNumCachedTokens(int n) {
        this.numCachedTokens = n;
    }

    /**
     * The engine, before {@link Scheduler#add}: the prompt's blocks found in the distributed KV tier, adopted at
     * admission.
     */
    public void setRemoteHits(RemoteKvTier.Hits hits) {
        this.remoteHits = hits == null ? RemoteKvTier.Hits.NONE : hits;
    }

    /** The remote hits, handed over once at admission (later admissions find them in the local cache). */
    @Override
    public RemoteKvTier.Hits takeRemoteHits() {
        RemoteKvTier.Hits h = remoteHits;
        remoteHits = RemoteKvTier.Hits.NONE;
        return h;
    }

    /** Scheduler only. */
    void setStatus(SequenceStatus status) {
        this.status = status;
    }

    @Override
    public String toString() {
        return "Sequence[" + requestId + ", " + status + ", tokens " + numTokens + " (prompt " + numPromptTokens
                + "), computed " + numComputedTokens + "]";
    }
}
