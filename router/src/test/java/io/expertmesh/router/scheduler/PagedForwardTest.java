package io.expertmesh.router.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.router.kv.BlockHasher;
import io.expertmesh.router.kv.KvCacheManager;
import io.expertmesh.router.kv.PagedKvStorage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The real DeepSeek-V3 fixture run greedily through {@link Scheduler}, {@link KvCacheManager} and
 * {@link PagedKvStorage} with blocks of 4, a budget of 3 tokens per step and 6 blocks for two sequences, so
 * prompts are chunked, decodes and prefills share steps, and the newer sequence is preempted and recomputed.
 * Every logits row must equal, bit for bit, the same sequence run alone over a contiguous cache: paging,
 * chunking, preemption and prefix reuse change where rows live, never what is computed.
 */
class PagedForwardTest {
    private static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");
    private static final int[] PROMPT = {0, 818, 726, 297, 56, 207, 375, 667};
    private static final int[] REFERENCE_GREEDY = {765, 164, 924, 360, 550, 932, 152, 385, 494};

    private static ComputePool pool;
    private static LoadedModel model;

    @BeforeAll
    static void load() throws Exception {
        pool = ComputePool.create(1);
        model = LoadedModel.open(FIXTURE, new VectorKernels(pool), (a, b) -> { });
    }

    @AfterAll
    static void close() {
        model.close();
        pool.close();
    }

    /** Greedy run of one sequence over a contiguous cache: logits of each output token, in order. */
    private static List<float[]> solo(int[] prompt, int numOutputs) {
        Transformer t = model.transformer();
        int vocab = t.config().vocabSize();
        KvCache cache = t.newCache(prompt.length + numOutputs);
        List<float[]> out = new ArrayList<>();
        float[] logits = new float[vocab];
        t.forward(ForwardBatch.ofSequence(prompt, 0, cache, prompt.length - 1), logits);
        out.add(logits.clone());
        for (int i = 1; i < numOutputs; i++) {
            int tok = argmax(logits, 0, vocab);
            t.forward(ForwardBatch.ofSequence(new int[]{tok}, prompt.length + i - 1, cache, 0), logits);
            out.add(logits.clone());
        }
        return out;
    }

    @ParameterizedTest(name = "prefixCaching={0}")
    @ValueSource(booleans = {false, true})
    void schedule_pagedChunkedPreempted_equalsSoloRunsBitForBit(boolean prefixCaching) {
        Transformer t = model.transformer();
        ModelConfig config = t.config();
        int vocab = config.vocabSize();
        PagedKvStorage storage = new PagedKvStorage(config.numLayers(), config.kvRowWidth(), 4, 6);
        long seed = BlockHasher.seedOf("deepseek-v3-tiny", "f32", 4, "mla:" + config.kvRowWidth());
        KvCacheManager kv = new KvCacheManager(storage, seed, prefixCaching);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(3, 4, 4), kv);

        int[] otherPrompt = new java.util.Random(5).ints(6, 2, vocab).toArray();
        SequenceState other = new SequenceState("other", otherPrompt, otherPrompt.length + 10, 0);
        SequenceState ref = new SequenceState("ref", PROMPT, PROMPT.length + REFERENCE_GREEDY.length, 1);
        assertTrue(scheduler.add(other));
        assertTrue(scheduler.add(ref));

        Map<SequenceState, Map<Integer, float[]>> logitsOf = new HashMap<>();
        boolean sawPartialChunk = false;
        boolean refPreemptedWithOutputs = false;
        int steps = 0;
        while (scheduler.hasWork()) {
            assertTrue(steps++ < 200, "the scheduler must make progress");
            List<ScheduledChunk> chunks = scheduler.schedule();
            assertFalse(chunks.isEmpty(), "a step with work schedules something");
            refPreemptedWithOutputs |= ref.status() == SequenceStatus.WAITING && ref.numOutputTokens() > 0;
            ForwardBatch batch = batchOf(chunks);
            assertTrue(batch.size() <= 3, "token budget");
            float[] logits = new float[batch.logitRows().length * vocab];
            t.forward(batch, logits);
            scheduler.onStepDone(chunks);
            int row = 0;
            for (ScheduledChunk c : chunks) {
                sawPartialChunk |= !c.needsLogits();
                if (!c.needsLogits()) {
                    continue;
                }
                SequenceState seq = c.seq();
                float[] mine = Arrays.copyOfRange(logits, row * vocab, (row + 1) * vocab);
                row++;
                float[] before = logitsOf.computeIfAbsent(seq, k -> new HashMap<>()).put(seq.numOutputTokens(), mine);
                assertEquals(null, before, "each output token is produced once");
                seq.appendToken(argmax(mine, 0, vocab));
                if (seq.numTokens() == seq.maxTotalTokens()) {
                    scheduler.finish(seq);
                }
            }
        }

        assertTrue(refPreemptedWithOutputs, "the newer sequence was preempted after producing tokens");
        assertTrue(sawPartialChunk, "prompts were chunked");
        int[] refOut = Arrays.copyOfRange(tokens(ref), PROMPT.length, ref.numTokens());
        assertArrayEquals(REFERENCE_GREEDY, refOut, "greedy tokens of the reference implementation");
        assertEquals(kv.stats().totalBlocks(), kv.stats().freeBlocks(), "every block returned");
        if (prefixCaching) {
            assertTrue(kv.stats().prefixHitTokens() > 0, "the preempted sequence got its own blocks back");
        }
        for (SequenceState seq : List.of(ref, other)) {
            int outputs = seq.numOutputTokens();
            List<float[]> expected = solo(seq.promptTokens(), outputs);
            for (int k = 0; k < outputs; k++) {
                assertArrayEquals(expected.get(k), logitsOf.get(seq).get(k), seq.requestId() + " output " + k);
            }
        }
    }

    /** The step's tokens in chunk order; a logits row for each chunk that produces a token. */
    private static ForwardBatch batchOf(List<ScheduledChunk> chunks) {
        int n = chunks.stream().mapToInt(ScheduledChunk::numTokens).sum();
        int[] tokens = new int[n];
        int[] positions = new int[n];
        KvCache[] caches = new KvCache[n];
        int[] rows = new int[(int) chunks.stream().filter(ScheduledChunk::needsLogits).count()];
        int i = 0;
        int r = 0;
        for (ScheduledChunk c : chunks) {
            for (int p = c.start(); p < c.end(); p++, i++) {
                tokens[i] = c.seq().tokenAt(p);
                positions[i] = p;
                caches[i] = c.seq().kvCache();
            }
            if (c.needsLogits()) {
                rows[r++] = i - 1;
            }
        }
        return new ForwardBatch(tokens, positions, caches, rows);
    }

    private static int[] tokens(SequenceState seq) {
        int[] out = new int[seq.numTokens()];
        seq.copyTokens(0, out.length, out, 0);
        return out;
    }

    private static int argmax(float[] a, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (a[off + i] > a[off + best]) {
                best = i;
            }
        }
        return best;
    }
}
