package io.expertmesh.router.scheduler;

import io.expertmesh.router.kv.KvCacheManager;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching with one token budget per step, after vLLM v1's {@code Scheduler.schedule}.
 *
 * <p>Each {@link #schedule} call builds one step:
 * <ol>
 *   <li><b>Running sequences first</b>, oldest arrival first: a decoding sequence gets its one new token, a
 *       sequence in the middle of a chunked prefill gets as much of the rest as the budget allows. When its
 *       blocks cannot be allocated, the <b>most recently arrived</b> running sequence is preempted (its blocks
 *       freed, its computed count reset to 0, put at the front of the waiting queue) and the allocation is
 *       retried; if the sequence itself is the newest, it is the one preempted. Preemption is by recompute:
 *       on readmission it runs prompt and outputs again (cheaper than swapping KV on a CPU server, and the
 *       prefix cache often returns most of its old blocks).</li>
 *   <li><b>Then waiting sequences, FCFS</b>, while budget, {@code maxRunning} and blocks allow, unless this
 *       step preempted (admitting would just thrash). A prompt longer than the remaining budget is split
 *       (chunked prefill) so running decodes are never stalled behind it. A waiting sequence that does not
 *       fit waits; it never causes a preemption, and nothing behind it overtakes it. Admission is
 *       {@code allocatePrefix} (local prefix hit), then {@code adoptRemoteBlocks} with the blocks the engine
 *       found in the distributed tier (once per sequence), then {@code allocateSlots}.</li>
 * </ol>
 * The running list is kept in arrival order, so preemption victims come from its tail, which this step has
 * not scheduled yet.
 *
 * <p><b>No livelock:</b> {@link #add} refuses a sequence that could not fit the pool even alone
 * ({@link #canEverFit}); every other sequence fits once everything older has finished, so the oldest sequence
 * always progresses. The engine should call {@link #canEverFit} before {@code add} and answer
 * INVALID_ARGUMENT.
 *
 * <p>Step protocol for the engine: {@code schedule()} → forward the chunks → {@link #onStepDone} → sample and
 * {@link SequenceState#appendToken} for each chunk that {@code needsLogits} → {@link #finish} the sequences
 * that stop. Single-threaded: all calls come from the engine's step thread; no locks.
 */
public final class Scheduler {
    private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

    private final SchedulerConfig config;
    private final KvCacheManager kv;
    private final ArrayDeque<SequenceState> waiting = new ArrayDeque<>();
    /** Sorted by arrival order. */
    private final ArrayList<SequenceState> running = new ArrayList<>();
    private long preemptions;

    public Scheduler(SchedulerConfig config, KvCacheManager kv) {
        this.config = config;
        this.kv = kv;
    }

    public SchedulerConfig config() {
        return config;
    }

    public KvCacheManager kv() {
        return kv;
    }

    /** See {@link KvCacheManager#canEverFit}. */
    public boolean canEverFit(SequenceState seq) {
        return kv.canEverFit(seq);
    }

    /**
     * Queues a new sequence. Returns false when the waiting queue holds {@code maxWaiting} sequences (answer
     * RESOURCE_EXHAUSTED).
     *
     * @throws IllegalArgumentException when the sequence can never fit the KV pool ({@link #canEverFit}) or
     *                                  is not new
     */
    public boolean add(SequenceState seq) {
        if (seq.status() != SequenceStatus.WAITING || seq.numComputedTokens() != 0) {
            throw new IllegalArgumentException(seq.requestId() + " is not a new sequence: " + seq);
        }
        if (!kv.canEverFit(seq)) {
            throw new IllegalArgumentException(seq.requestId() + ": " + seq.maxTotalTokens()
                    + " tokens can never fit the KV cache of " + kv.maxTokensPerSequence() + " tokens");
        }
        if (waiting.size() >= config.maxWaiting()) {
            return false;
        }
        waiting.addLast(seq);
        return true;
    }

    /** One step's chunks; empty when there is nothing to run. */
    public List<ScheduledChunk> schedule() {
        List<ScheduledChunk> chunks = new ArrayList<>(running.size() + 1);
        int budget = config.maxBatchedTokens();
        boolean preempted = false;

        for (int i = 0; i < running.size() && budget > 0; ) {
            SequenceState seq = running.get(i);
            int n = Math.min(seq.numTokens() - seq.numComputedTokens(), budget);
            if (n <= 0) {
                i++;    // waiting for the engine to append its sampled token
                continue;
            }
            boolean scheduled = false;
            while (true) {
                if (kv.allocateSlots(seq, n)) {
                    scheduled = true;
                    break;
                }
                SequenceState victim = running.removeLast();
                preempt(victim);
                preempted = true;
                if (victim == seq) {
                    break;
                }
            }
            if (scheduled) {
                chunks.add(chunkOf(seq, n));
                budget -= n;
                i++;
            }
        }

        while (!preempted && budget > 0 && running.size() < config.maxRunning() && !waiting.isEmpty()) {
            SequenceState seq = waiting.peekFirst();
            kv.admit(seq);
            int n = Math.min(seq.numTokens() - seq.numComputedTokens(), budget);
            if (!kv.allocateSlots(seq, n)) {
                break;
            }
            waiting.pollFirst();
            seq.setStatus(SequenceStatus.RUNNING);
            insertRunning(seq);
            chunks.add(chunkOf(seq, n));
            budget -= n;
        }
        return chunks;
    }

    /** Marks each chunk's tokens computed and registers the blocks they filled in the prefix cache. */
    public void onStepDone(List<ScheduledChunk> chunks) {
        for (ScheduledChunk c : chunks) {
            SequenceState seq = c.seq();
            if (seq.status() != SequenceStatus.RUNNING || seq.numComputedTokens() != c.start()) {
                continue;   // finished or preempted since the chunk was scheduled
            }
            seq.setNumComputedTokens(c.end());
            kv.cacheFullBlocks(seq);
        }
    }

    /** Removes {@code seq} wherever it is and frees its blocks now (stop, cancel, deadline, error). */
    public void finish(SequenceState seq) {
        switch (seq.status()) {
            case WAITING -> waiting.remove(seq);
            case RUNNING -> running.remove(seq);
            case FINISHED -> {
                return;
            }
        }
        kv.free(seq);
        seq.setStatus(SequenceStatus.FINISHED);
    }

    public int numRunning() {
        return running.size();
    }

    public int numWaiting() {
        return waiting.size();
    }

    /** True when some sequence is waiting or running. */
    public boolean hasWork() {
        return !running.isEmpty() || !waiting.isEmpty();
    }

    /** Preemptions since start. */
    public long preemptions() {
        return preemptions;
    }

    private void preempt(SequenceState victim) {
        kv.free(victim);
        victim.setNumComputedTokens(0);
        victim.setStatus(SequenceStatus.WAITING);
        waiting.addFirst(victim);
        preemptions++;
        LOG.debug("Preempted {} ({} tokens) to free KV blocks; {} free", victim.requestId(), victim.numTokens(),
                kv.pool().numFreeBlocks());
    }

    private void insertRunning(SequenceState seq) {
        int i = running.size();
        while (i > 0 && running.get(i - 1).arrivalOrder() > seq.arrivalOrder()) {
            i--;
        }
        running.add(i, seq);
    }

    private static ScheduledChunk chunkOf(SequenceState seq, int n) {
        int start = seq.numComputedTokens();
        return new ScheduledChunk(seq, start, n, start + n == seq.numTokens());
    }
}
