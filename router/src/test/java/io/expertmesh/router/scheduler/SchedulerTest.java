package io.expertmesh.router.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.router.kv.KvCacheManager;
import io.expertmesh.router.kv.PagedKvStorage;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class SchedulerTest {
    private static final int BS = 4;

    private static Scheduler scheduler(int budget, int maxRunning, int maxWaiting, int blocks, boolean caching) {
        KvCacheManager kv = new KvCacheManager(new PagedKvStorage(1, 2, BS, blocks), 1L, caching);
        return new Scheduler(new SchedulerConfig(budget, maxRunning, maxWaiting), kv);
    }

    private static Scheduler scheduler(int budget, int maxRunning, int blocks) {
        return scheduler(budget, maxRunning, 16, blocks, false);
    }

    private static SequenceState seq(String id, int promptLen, int maxOutput, long arrival) {
        int[] prompt = IntStream.range(0, promptLen).map(i -> (int) (arrival * 1000 + i)).toArray();
        return new SequenceState(id, prompt, promptLen + maxOutput, arrival);
    }

    /**
     * One engine step: schedule, "forward", mark computed, append a token where logits were produced, finish
     * sequences that reached their limit.
     */
    private static List<ScheduledChunk> step(Scheduler s) {
        List<ScheduledChunk> chunks = s.schedule();
        s.onStepDone(chunks);
        for (ScheduledChunk c : chunks) {
            if (c.needsLogits()) {
                c.seq().appendToken(7);
                if (c.seq().numTokens() == c.seq().maxTotalTokens()) {
                    s.finish(c.seq());
                }
            }
        }
        return chunks;
    }

    private static int total(List<ScheduledChunk> chunks) {
        return chunks.stream().mapToInt(ScheduledChunk::numTokens).sum();
    }

    private static ScheduledChunk chunkOf(List<ScheduledChunk> chunks, SequenceState seq) {
        return chunks.stream().filter(c -> c.seq() == seq).findFirst().orElse(null);
    }

    @Test
    void schedule_twoPromptsOverBudget_staysWithinBudgetAndChunksTheSecond() {
        Scheduler s = scheduler(6, 4, 16);
        SequenceState a = seq("a", 4, 4, 0);
        SequenceState b = seq("b", 5, 4, 1);
        s.add(a);
        s.add(b);
        List<ScheduledChunk> chunks = step(s);
        assertEquals(6, total(chunks));
        assertEquals(new ScheduledChunk(a, 0, 4, true), chunks.get(0));
        assertEquals(new ScheduledChunk(b, 0, 2, false), chunks.get(1));
        chunks = step(s);
        assertEquals(new ScheduledChunk(a, 4, 1, true), chunks.get(0), "decode first");
        assertEquals(new ScheduledChunk(b, 2, 3, true), chunks.get(1), "then the rest of b's prompt");
    }

    @Test
    void schedule_longPromptWhileDecoding_chunksThePrefillAndDecodesEveryStep() {
        Scheduler s = scheduler(4, 4, 16);
        SequenceState a = seq("a", 2, 10, 0);
        s.add(a);
        step(s);
        SequenceState b = seq("b", 10, 2, 1);
        s.add(b);
        int expectedStart = 0;
        int steps = 0;
        while (b.numComputedTokens() < b.numPromptTokens()) {
            List<ScheduledChunk> chunks = step(s);
            steps++;
            assertTrue(total(chunks) <= 4);
            ScheduledChunk da = chunks.get(0);
            assertSame(a, da.seq(), "the running decode goes first");
            assertEquals(1, da.numTokens());
            assertTrue(da.needsLogits());
            ScheduledChunk cb = chunkOf(chunks, b);
            assertEquals(expectedStart, cb.start(), "chunks continue where the last ended");
            assertEquals(cb.end() == 10, cb.needsLogits(), "logits only from the chunk that ends the prompt");
            expectedStart = cb.end();
        }
        assertEquals(4, steps, "10 prompt tokens at 3 per step");
        assertEquals(11, b.numTokens(), "b produced its first token");
        assertEquals(new ScheduledChunk(b, 10, 1, true), chunkOf(step(s), b), "then b decodes");
    }

    @Test
    void schedule_waitingSequences_admittedFirstComeFirstServedUpToMaxRunning() {
        Scheduler s = scheduler(100, 2, 16);
        SequenceState a = seq("a", 3, 4, 0);
        SequenceState b = seq("b", 3, 4, 1);
        SequenceState c = seq("c", 3, 4, 2);
        s.add(a);
        s.add(b);
        s.add(c);
        List<ScheduledChunk> chunks = step(s);
        assertEquals(List.of(a, b), chunks.stream().map(ScheduledChunk::seq).toList());
        assertEquals(2, s.numRunning());
        assertEquals(1, s.numWaiting());
        assertEquals(2, step(s).size(), "maxRunning holds c back");
        s.finish(a);
        chunks = step(s);
        assertEquals(List.of(b, c), chunks.stream().map(ScheduledChunk::seq).toList());
    }

    @Test
    void schedule_waitingHeadDoesNotFit_laterSmallerOnesWaitBehindIt() {
        Scheduler s = scheduler(100, 8, 4);
        SequenceState a = seq("a", 8, 4, 0);      // 2 blocks
        SequenceState big = seq("big", 9, 3, 1);  // 3 blocks
        SequenceState small = seq("small", 1, 3, 2);
        s.add(a);
        step(s);
        s.add(big);
        s.add(small);
        List<ScheduledChunk> chunks = step(s);
        assertEquals(List.of(a), chunks.stream().map(ScheduledChunk::seq).toList(),
                "no preemption to admit, and FCFS: small does not overtake big");
        assertEquals(0, s.preemptions());
        assertEquals(2, s.numWaiting());
        s.finish(a);
        chunks = step(s);
        assertEquals(List.of(big, small), chunks.stream().map(ScheduledChunk::seq).toList());
    }

    @Test
    void add_waitingQueueFull_returnsFalse() {
        Scheduler s = scheduler(8, 4, 2, 16, false);
        assertTrue(s.add(seq("a", 2, 2, 0)));
        assertTrue(s.add(seq("b", 2, 2, 1)));
        assertFalse(s.add(seq("c", 2, 2, 2)));
        assertEquals(2, s.numWaiting());
        step(s);
        assertTrue(s.add(seq("c", 2, 2, 2)), "admission made room");
    }

    @Test
    void schedule_blocksRunOut_preemptsTheNewestAndRecomputesItLater() {
        // 4 blocks of 4: a and b take 2 blocks each for their 8-token prompts; the first decode needs a 5th.
        Scheduler s = scheduler(100, 4, 16, 4, false);
        SequenceState a = seq("a", 8, 4, 0);
        SequenceState b = seq("b", 8, 4, 1);
        s.add(a);
        s.add(b);
        step(s);
        assertEquals(0, s.kv().stats().freeBlocks());

        List<ScheduledChunk> chunks = step(s);
        assertEquals(List.of(new ScheduledChunk(a, 8, 1, true)), chunks);
        assertEquals(1, s.preemptions());
        assertEquals(SequenceStatus.WAITING, b.status());
        assertEquals(0, b.numComputedTokens());
        assertEquals(9, b.numTokens(), "b keeps its output token");
        assertEquals(1, s.numWaiting());
        assertEquals(1, s.kv().stats().freeBlocks(), "b's 2 blocks freed, a took one");

        step(s);
        assertEquals(11, a.numTokens());
        assertEquals(1, s.preemptions(), "b waits; it never preempts a to get back in");
        assertEquals(SequenceStatus.WAITING, b.status());
        step(s);
        assertEquals(SequenceStatus.FINISHED, a.status(), "a reached its limit of 12 tokens");
        chunks = step(s);
        assertEquals(List.of(new ScheduledChunk(b, 0, 9, true)), chunks, "recomputed from scratch incl. output");
        assertEquals(10, b.numTokens());
        assertEquals(new ScheduledChunk(b, 9, 1, true), step(s).get(0));
    }

    @Test
    void schedule_newestRunningCannotGrow_preemptsItselfAndOlderKeepsRunning() {
        Scheduler s = scheduler(100, 4, 16, 3, false);
        SequenceState a = seq("a", 4, 4, 0);    // 1 block, needs a 2nd at its first decode
        SequenceState b = seq("b", 8, 4, 1);    // 2 blocks, needs a 3rd at its first decode
        s.add(a);
        s.add(b);
        step(s);
        List<ScheduledChunk> chunks = step(s);
        // a takes the last free block; b then cannot grow, and as the newest it preempts itself.
        assertEquals(List.of(new ScheduledChunk(a, 4, 1, true)), chunks);
        assertEquals(SequenceStatus.WAITING, b.status());
        assertEquals(1, s.preemptions());
    }

    @Test
    void schedule_readmittedAfterPreemption_reusesItsOwnCachedBlocks() {
        Scheduler s = scheduler(100, 4, 16, 4, true);
        SequenceState a = seq("a", 8, 4, 0);
        SequenceState b = seq("b", 8, 4, 1);
        s.add(a);
        s.add(b);
        step(s);
        step(s);            // b preempted; its two full blocks go to the free queue, last block first
        assertEquals(1, s.preemptions());
        assertEquals(3, s.kv().stats().cachedBlocks(), "a's two, and b's first: a took the tail of b's chain");
        s.finish(a);
        List<ScheduledChunk> chunks = step(s);
        assertEquals(List.of(new ScheduledChunk(b, 4, 5, true)), chunks, "4 of 9 tokens from the cache");
        assertEquals(4, b.numCachedTokens());
    }

    @Test
    void finish_waitingAndRunningSequences_freesEveryBlock() {
        Scheduler s = scheduler(100, 1, 8);
        SequenceState a = seq("a", 6, 4, 0);
        SequenceState b = seq("b", 6, 4, 1);
        s.add(a);
        s.add(b);
        step(s);
        assertEquals(SequenceStatus.RUNNING, a.status());
        assertEquals(SequenceStatus.WAITING, b.status());
        s.finish(b);
        s.finish(a);
        assertEquals(SequenceStatus.FINISHED, a.status());
        assertEquals(SequenceStatus.FINISHED, b.status());
        assertEquals(0, s.numRunning());
        assertEquals(0, s.numWaiting());
        assertEquals(8, s.kv().stats().freeBlocks());
        assertTrue(s.schedule().isEmpty());
        s.finish(a);    // idempotent
        assertFalse(s.hasWork());
    }

    @Test
    void finish_betweenScheduleAndStepDone_ignoresItsChunk() {
        Scheduler s = scheduler(100, 4, 8);
        SequenceState a = seq("a", 6, 4, 0);
        s.add(a);
        List<ScheduledChunk> chunks = s.schedule();
        s.finish(a);
        s.onStepDone(chunks);
        assertEquals(0, a.numComputedTokens());
        assertEquals(8, s.kv().stats().freeBlocks());
    }

    @Test
    void add_sequenceLargerThanThePool_isRefusedSoTheSchedulerNeverSpins() {
        Scheduler s = scheduler(100, 4, 4);      // 16 tokens in all
        SequenceState huge = seq("huge", 20, 1, 0);
        SequenceState growsTooLarge = seq("grows", 4, 13, 1);
        assertFalse(s.canEverFit(huge));
        assertFalse(s.canEverFit(growsTooLarge), "prompt fits but prompt + max output does not");
        assertTrue(s.canEverFit(seq("fits", 4, 12, 2)));
        assertThrows(IllegalArgumentException.class, () -> s.add(huge));
        assertEquals(0, s.numWaiting());
        assertTrue(s.schedule().isEmpty());
    }

    @Test
    void schedule_sequenceUsingTheWholePool_runsToItsLimit() {
        Scheduler s = scheduler(3, 4, 4);
        SequenceState a = seq("a", 5, 11, 0);   // 16 tokens = every block
        SequenceState b = seq("b", 2, 2, 1);
        s.add(a);
        s.add(b);
        int steps = 0;
        while (s.hasWork()) {
            assertTrue(steps++ < 100, "no livelock");
            assertFalse(step(s).isEmpty());
        }
        assertEquals(16, a.numTokens());
        assertEquals(4, b.numTokens());
        assertEquals(SequenceStatus.FINISHED, b.status());
    }

    @Test
    void config_nonPositiveBudget_throws() {
        assertThrows(IllegalArgumentException.class, () -> new SchedulerConfig(0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new SchedulerConfig(1, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new SchedulerConfig(1, 1, -1));
    }
}
