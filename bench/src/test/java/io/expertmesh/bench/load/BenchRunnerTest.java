package io.expertmesh.bench.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.client.ClientConfig;
import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The runner against the fake router with known delays: it sends 2 tokens per message, {@code tokenDelay}
 * before each, so with delay d and 8 tokens: TTFT = d, ITLs = 0, d, 0, d, 0, d, 0... E2E = 4d, TPOT = 3d/7.
 */
class BenchRunnerTest {
    private static final long D_MS = 25;

    private static List<Workload.Item> items(int n, int maxTokens) {
        return new Workload(LengthDistribution.parse("fixed:8"), LengthDistribution.parse("fixed:" + maxTokens), 0,
                0, FakeInferenceService.VOCAB_SIZE, 512, 1).generate(n);
    }

    @Test
    void run_fakeWithKnownDelays_measuresTtftItlTpotE2e() throws Exception {
        FakeInferenceService service = new FakeInferenceService().tokenDelay(Duration.ofMillis(D_MS));
        try (FakeRouter router = FakeRouter.inProcess(service);
             ExpertMeshClient client = router.client(ClientConfig.defaults())) {
            BenchRunner runner = new BenchRunner(client);
            BenchRunner.Result result = runner.run(new BenchRunner.Plan(items(2, 8), items(8, 8), null, 4,
                    Duration.ofSeconds(30), Duration.ofSeconds(30), true, 0));
            assertEquals(8, result.records().size());
            assertEquals(0, result.notSent());
            for (RequestRecord r : result.records()) {
                assertTrue(r.ok());
                assertEquals(8, r.outputTokens());
                assertArrayEquals(new int[] {2, 2, 2, 2}, r.chunkTokens());
                long[] itl = r.itlNanos();
                assertEquals(7, itl.length);
                for (int i = 0; i < 7; i += 2) {
                    assertEquals(0, itl[i], "second token of a message");
                }
                // One late message shortens the next gap (the fake's sleeps are between sends), so each gap is only
                // positive; their sum cannot be shorter than the three sleeps between the four messages.
                long gaps = 0;
                for (int i = 1; i < 7; i += 2) {
                    assertTrue(itl[i] > 0, "gap " + itl[i]);
                    gaps += itl[i];
                }
                assertTrue(gaps >= 3 * D_MS * 1_000_000 * 9 / 10, "gaps " + gaps);
                assertEquals((r.e2eNanos() - r.ttftNanos()) / 7.0, r.tpotNanos(), 1e-6);
            }
            BenchSummary s = BenchSummary.of("fake", Double.POSITIVE_INFINITY, 4, result.durationNanos(),
                    result.records(), Slo.parse("ttft:5000,tpot:5000"));
            assertEquals(8, s.completed());
            assertEquals(8, s.goodRequests());
            assertEquals(0, s.itl().p50(), "4 of 7 ITLs are 0");
            // lower bounds only: the fake's sleeps guarantee them; a loaded machine may stretch anything
            assertTrue(s.itl().p90() >= D_MS * 0.9, "p90 ITL " + s.itl().p90());
            assertTrue(s.ttft().p50() >= D_MS * 0.9, "TTFT " + s.ttft().p50());
            assertTrue(s.e2e().p50() >= 4 * D_MS * 0.9, "E2E " + s.e2e().p50());
            assertTrue(s.tpot().mean() >= 3 * D_MS / 7.0 * 0.9, "TPOT " + s.tpot().mean());
            assertEquals(64, s.outputTokens());
            // 2 rounds of 4 concurrent requests of about 4d each
            assertTrue(result.durationNanos() >= 2 * 4 * D_MS * 900_000, "duration " + result.durationNanos());
        }
    }

    @Test
    void run_failingRequest_recordedWithItsStatusCode() throws Exception {
        FakeInferenceService service = new FakeInferenceService().failNextGenerate(Status.RESOURCE_EXHAUSTED);
        try (FakeRouter router = FakeRouter.inProcess(service);
             ExpertMeshClient client = router.client(ClientConfig.defaults())) {
            BenchRunner.Result result = new BenchRunner(client).run(new BenchRunner.Plan(List.of(), items(3, 4),
                    null, 1, Duration.ofSeconds(30), Duration.ofSeconds(30), true, 0));
            BenchSummary s = BenchSummary.of("x", 1, 1, result.durationNanos(), result.records(), Slo.NONE);
            assertEquals(2, s.completed());
            assertEquals(java.util.Map.of("RESOURCE_EXHAUSTED", 1), s.errors());
        }
    }

    /** Virtual time for the runner: parking moves it to the deadline at once; nothing else moves it. */
    private static final class VirtualTicker implements BenchRunner.Ticker {
        private final AtomicLong now = new AtomicLong(1_000_000_000L);

        @Override
        public long nanoTime() {
            return now.get();
        }

        @Override
        public void parkUntil(long deadline) {
            now.accumulateAndGet(deadline, Math::max);
        }
    }

    @Test
    void run_openLoopRate_sendsEachRequestWhenTheArrivalProcessSaysItIsDue() throws Exception {
        try (FakeRouter router = FakeRouter.inProcess(new FakeInferenceService());
             ExpertMeshClient client = router.client(ClientConfig.defaults())) {
            VirtualTicker ticker = new VirtualTicker();
            long t0 = ticker.nanoTime();
            ArrivalProcess arrivals = new ArrivalProcess(100, 50);
            BenchRunner.Result result = new BenchRunner(client, ticker).run(new BenchRunner.Plan(List.of(),
                    items(20, 2), arrivals, 0, Duration.ofSeconds(30), Duration.ofSeconds(30), true, 3));
            assertEquals(20, result.records().size());
            long[] starts = result.records().stream().mapToLong(r -> r.startNanos() - t0).sorted().toArray();
            assertArrayEquals(BenchRunner.arrivalSchedule(arrivals, 3, 20), starts);
        }
    }

    @Test
    void run_openLoopPastDuration_sendsOnlyTheRequestsDueBeforeIt() throws Exception {
        try (FakeRouter router = FakeRouter.inProcess(new FakeInferenceService());
             ExpertMeshClient client = router.client(ClientConfig.defaults())) {
            ArrivalProcess arrivals = new ArrivalProcess(100, 50);
            long[] due = BenchRunner.arrivalSchedule(arrivals, 3, 50);
            Duration duration = Duration.ofNanos(due[9] + 1); // the 10th request is due just inside it
            BenchRunner.Result result = new BenchRunner(client, new VirtualTicker()).run(new BenchRunner.Plan(
                    List.of(), items(50, 2), arrivals, 0, duration, Duration.ofSeconds(30), true, 3));
            assertEquals(10, result.records().size());
            assertEquals(40, result.notSent());
        }
    }

    @Test
    void arrivalSchedule_regularRate100_increasingWithMeanGapOfTenMs() {
        long[] due = BenchRunner.arrivalSchedule(new ArrivalProcess(100, 50), 3, 2000);
        for (int i = 1; i < due.length; i++) {
            assertTrue(due[i] > due[i - 1], "request " + i + " is due after the one before");
        }
        double meanGapMs = due[due.length - 1] / 1e6 / due.length;
        assertEquals(10.0, meanGapMs, 0.3, "1/rate");
        assertArrayEquals(due, BenchRunner.arrivalSchedule(new ArrivalProcess(100, 50), 3, 2000), "seeded");
    }

    @Test
    void run_durationElapsed_stopsSendingAndDrainsRunning() throws Exception {
        FakeInferenceService service = new FakeInferenceService().tokenDelay(Duration.ofMillis(200));
        try (FakeRouter router = FakeRouter.inProcess(service);
             ExpertMeshClient client = router.client(ClientConfig.defaults())) {
            BenchRunner.Result result = new BenchRunner(client).run(new BenchRunner.Plan(List.of(), items(50, 8),
                    null, 2, Duration.ofMillis(300), Duration.ofMillis(100), true, 0));
            assertTrue(result.notSent() > 40, "not sent " + result.notSent());
            assertTrue(result.records().stream().anyMatch(r -> r.error() == Status.Code.CANCELLED),
                    "cancelled at the drain timeout");
        }
    }
}
