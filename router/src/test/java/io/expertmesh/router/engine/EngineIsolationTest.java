package io.expertmesh.router.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.sample.FinishReason;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.kvcache.NoopKvBlockStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * One request's own failure (its sampling, its stream) ends that request alone: the requests batched with it finish
 * with the tokens they make alone, and the engine's KV blocks all come back. Validation is bypassed on purpose (the
 * engine is called directly): this is the line of defence behind it.
 */
class EngineIsolationTest {
    static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");
    static final int[] PROMPT = {0, 818, 726, 297, 56, 207, 375, 667};
    static final int MAX_TOKENS = 8;
    static LoadedModel model;
    /** What each innocent request makes alone. */
    static List<List<Integer>> alone;

    @BeforeAll
    static void load() throws Exception {
        model = LoadedModel.open(FIXTURE, new VectorKernels(ComputePool.create(2)), (a, b) -> { }, null);
        alone = alone(15);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** One request's tokens and its end, as the engine reported them. */
    static class Recorder implements SequenceListener {
        final List<Integer> tokens = new CopyOnWriteArrayList<>();
        final CompletableFuture<Completion> done = new CompletableFuture<>();

        @Override
        public void onToken(TokenEvent token) {
            tokens.add(token.tokenId());
        }

        @Override
        public void onFinished(Completion completion) {
            done.complete(completion);
        }

        Completion await() throws Exception {
            return done.get(60, TimeUnit.SECONDS);
        }
    }

    /** Holds the engine thread in its next forward pass until released, so that submissions pile up. */
    static final class Gate implements StepObserver {
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        /** The number of sequences in each step, and whether the watched listener was in it. */
        final List<int[]> steps = new CopyOnWriteArrayList<>();
        volatile SequenceListener watched;

        @Override
        public StepScope beforeForward(List<SequenceListener> listeners, int tokens) {
            steps.add(new int[] {listeners.size(), listeners.contains(watched) ? 1 : 0});
            entered.countDown();
            try {
                release.await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return StepScope.NONE;
        }
    }

    static EngineConfig config() {
        return new EngineConfig(4, 4L << 20, 512, 32, 32, true);
    }

    static SamplingParams innocent(int i) {
        return SamplingParams.defaults().withTemperature(0.8f).withSeed(100L + i).withMaxTokens(MAX_TOKENS)
                .withIgnoreEos(true);
    }

    /**
     * Each innocent request alone in an engine: the tokens it must make in any batch. (Engines on one model must
     * not run at the same time: they share the model's working buffers.)
     */
    static List<List<Integer>> alone(int n) throws Exception {
        List<List<Integer>> out = new ArrayList<>();
        try (Engine engine = new Engine(model, config())) {
            for (int i = 0; i < n; i++) {
                Recorder r = new Recorder();
                engine.submit(new EngineRequest("alone-" + i, PROMPT, innocent(i), false), r);
                assertEquals(FinishReason.LENGTH, r.await().reason());
                out.add(List.copyOf(r.tokens));
            }
        }
        return out;
    }

    /**
     * Runs 15 innocent requests and {@code poisoned} together: all 16 are admitted in the same step (the engine is
     * held in a warm-up request's step while they are submitted). Returns the 16 recorders, the poisoned one last.
     */
    static List<Recorder> batch(EngineRequest poisoned, Recorder poisonedListener, Gate gate, Engine engine)
            throws Exception {
        gate.watched = poisonedListener;
        Recorder warmUp = new Recorder();
        engine.submit(new EngineRequest("warm-up", PROMPT, SamplingParams.greedy().withMaxTokens(1), false), warmUp);
        assertTrue(gate.entered.await(60, TimeUnit.SECONDS));
        List<Recorder> out = new ArrayList<>();
        for (int i = 0; i < 15; i++) {
            Recorder r = new Recorder();
            engine.submit(new EngineRequest("innocent-" + i, PROMPT, innocent(i), false), r);
            out.add(r);
        }
        engine.submit(poisoned, poisonedListener);
        out.add(poisonedListener);
        gate.release.countDown();
        warmUp.await();
        return out;
    }

    static void assertInnocentsUnharmed(List<Recorder> batch, Gate gate, Engine engine) throws Exception {
        for (int i = 0; i < 15; i++) {
            Completion c = batch.get(i).await();
            assertEquals(FinishReason.LENGTH, c.reason(), "innocent " + i + ": " + c.error());
            assertEquals(alone.get(i), batch.get(i).tokens, "innocent " + i + " makes the tokens it makes alone");
        }
        assertTrue(gate.steps.stream().anyMatch(s -> s[0] == 16 && s[1] == 1),
                "the poisoned request shared a step with the 15 others");
        // The engine publishes its status after the step that ended the last request.
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30)).untilAsserted(() -> {
            EngineStatus s = engine.status();
            assertEquals(0, s.running() + s.waiting());
            assertEquals(s.kv().totalBlocks(), s.kv().freeBlocks(), "every KV block is free again");
        });
    }

    @Test
    void step_oneRequestsSamplingThrows_onlyThatRequestEndsWithError() throws Exception {
        Gate gate = new Gate();
        try (Engine engine = new Engine(model, config(), EngineOptions.DEFAULT.withStepObserver(gate))) {
            // Past the API's bounds: dividing the prompt tokens' positive logits by 1e-45 makes them infinite, and
            // a temperature draw over infinite logits throws.
            SamplingParams poison = SamplingParams.defaults().withTemperature(1f).withRepetitionPenalty(1e-45f)
                    .withMaxTokens(MAX_TOKENS).withIgnoreEos(true);
            Recorder poisoned = new Recorder();
            List<Recorder> batch = batch(new EngineRequest("poisoned", PROMPT, poison, false), poisoned, gate,
                    engine);
            Completion p = poisoned.await();
            assertEquals(FinishReason.ERROR, p.reason());
            assertNotNull(p.error());
            assertTrue(p.error().startsWith("sampling failed: ") && p.error().contains("logits"), p.error());
            assertEquals(List.of(), poisoned.tokens);
            assertInnocentsUnharmed(batch, gate, engine);
            assertEquals(1L, engine.status().finished().get("error"));
        }
    }

    @Test
    void step_oneRequestsListenerThrows_onlyThatRequestEndsWithError() throws Exception {
        Gate gate = new Gate();
        try (Engine engine = new Engine(model, config(), EngineOptions.DEFAULT.withStepObserver(gate))) {
            Recorder broken = new Recorder() {
                @Override
                public void onToken(TokenEvent token) {
                    super.onToken(token);
                    if (tokens.size() == 3) {
                        throw new IllegalStateException("stream broke");
                    }
                }
            };
            List<Recorder> batch = batch(new EngineRequest("broken", PROMPT, innocent(99), false), broken, gate,
                    engine);
            Completion b = broken.await();
            assertEquals(FinishReason.ERROR, b.reason());
            assertTrue(b.error().contains("stream broke"), b.error());
            assertEquals(3, broken.tokens.size());
            assertInnocentsUnharmed(batch, gate, engine);
        }
    }
}
