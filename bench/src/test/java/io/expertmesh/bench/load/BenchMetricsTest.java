package io.expertmesh.bench.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** TTFT, ITL, TPOT and E2E on synthetic timelines; percentiles, throughput and goodput. */
class BenchMetricsTest {
    private static final long MS = 1_000_000;

    /** A request started at {@code t0} ms whose messages arrived at {@code at} ms carrying {@code n} tokens. */
    static RequestRecord rec(long t0, long[] at, int[] n, long end) {
        long[] ns = new long[at.length];
        for (int i = 0; i < at.length; i++) {
            ns[i] = at[i] * MS;
        }
        return new RequestRecord(t0 * MS, ns, n, end * MS, 10, 4, null);
    }

    @Test
    void timeline_oneTokenPerMessage_itlIsTheGaps() {
        RequestRecord r = rec(0, new long[] {100, 120, 150, 160}, new int[] {1, 1, 1, 1}, 165);
        assertEquals(100 * MS, r.ttftNanos());
        assertEquals(165 * MS, r.e2eNanos());
        assertEquals(4, r.outputTokens());
        assertArrayEquals(new long[] {20 * MS, 30 * MS, 10 * MS}, r.itlNanos());
        assertEquals((165 - 100) / 3.0 * MS, r.tpotNanos(), 1e-6);
    }

    @Test
    void timeline_messageWithSeveralTokens_firstGetsTheGapRestGetZero() {
        // 2 tokens in the first message, then 3 at once after 40 ms, then 1 after 10 ms
        RequestRecord r = rec(10, new long[] {60, 100, 110}, new int[] {2, 3, 1}, 110);
        assertEquals(50 * MS, r.ttftNanos());
        assertEquals(6, r.outputTokens());
        assertArrayEquals(new long[] {0, 40 * MS, 0, 0, 10 * MS}, r.itlNanos());
        long sum = 0;
        for (long g : r.itlNanos()) {
            sum += g;
        }
        assertEquals(50 * MS, sum, "ITLs sum to first-to-last token time");
        assertEquals(50.0 / 5 * MS, r.tpotNanos(), 1e-6);
    }

    @Test
    void timeline_singleToken_hasNoTpotAndNoItl() {
        RequestRecord r = rec(0, new long[] {30}, new int[] {1}, 31);
        assertTrue(Double.isNaN(r.tpotNanos()));
        assertEquals(0, r.itlNanos().length);
    }

    @Test
    void timeline_noTokens_ttftIsMinusOne() {
        RequestRecord r = new RequestRecord(0, new long[0], new int[0], 5, 3, 0, Status.Code.INVALID_ARGUMENT);
        assertEquals(-1, r.ttftNanos());
        assertEquals(0, r.itlNanos().length);
    }

    @Test
    void latencyStats_oneToHundredMs_percentilesAndMeanExact() {
        LatencyStats.Recorder rec = new LatencyStats.Recorder();
        for (int i = 100; i >= 1; i--) {
            rec.recordNanos(i * MS);
        }
        LatencyStats s = rec.stats();
        assertEquals(100, s.count());
        assertEquals(50.5, s.mean(), 1e-9);
        assertEquals(50, s.p50(), 0.05);
        assertEquals(90, s.p90(), 0.09);
        assertEquals(99, s.p99(), 0.1);
        assertEquals(1, s.min(), 1e-9);
        assertEquals(100, s.max(), 1e-9);
    }

    @Test
    void latencyStats_skewed_p99FindsTheTail() {
        LatencyStats.Recorder rec = new LatencyStats.Recorder();
        for (int i = 0; i < 980; i++) {
            rec.recordNanos(10 * MS);
        }
        for (int i = 0; i < 20; i++) {
            rec.recordNanos(500 * MS);
        }
        LatencyStats s = rec.stats();
        assertEquals(10, s.p50(), 0.01);
        assertEquals(10, s.p90(), 0.01);
        assertEquals(500, s.p99(), 0.5);
        assertEquals((980 * 10 + 20 * 500) / 1000.0, s.mean(), 1e-9);
    }

    @Test
    void latencyStats_nanAndNegative_ignored() {
        LatencyStats.Recorder rec = new LatencyStats.Recorder();
        rec.recordNanos(Double.NaN);
        rec.recordNanos(-1);
        assertEquals(LatencyStats.EMPTY, rec.stats());
    }

    @Test
    void slo_parse_readsBothAndRejectsUnknown() {
        assertEquals(new Slo(200, 50), Slo.parse("ttft:200,tpot:50"));
        assertEquals(new Slo(Double.NaN, 50), Slo.parse("tpot:50"));
        assertTrue(Slo.parse(null).none());
        assertThrows(IllegalArgumentException.class, () -> Slo.parse("e2e:5"));
        assertThrows(IllegalArgumentException.class, () -> Slo.parse("ttft:-5"));
        assertThrows(IllegalArgumentException.class, () -> Slo.parse("ttft"));
    }

    @Test
    void summary_mixedRequests_throughputGoodputHitRateAndErrors() {
        List<RequestRecord> rs = new ArrayList<>();
        // good: ttft 100, tpot (300-100)/4 = 50
        rs.add(rec(0, new long[] {100, 150, 200, 250, 300}, new int[] {1, 1, 1, 1, 1}, 300));
        // ttft too slow: 400
        rs.add(rec(0, new long[] {400, 450}, new int[] {1, 1}, 450));
        // tpot too slow: (1000-100)/2 = 450
        rs.add(rec(500, new long[] {600, 1000, 1500}, new int[] {1, 1, 1}, 1500));
        // single token: no tpot, meets the tpot objective
        rs.add(rec(1000, new long[] {1100}, new int[] {1}, 2000));
        rs.add(new RequestRecord(0, new long[0], new int[0], MS, 10, 0, Status.Code.INVALID_ARGUMENT));
        rs.add(new RequestRecord(0, new long[0], new int[0], MS, 10, 0, Status.Code.INVALID_ARGUMENT));
        rs.add(new RequestRecord(0, new long[0], new int[0], MS, 10, 0, Status.Code.RESOURCE_EXHAUSTED));
        BenchSummary s = BenchSummary.of("t", 4, 0, 2000 * MS, rs, Slo.parse("ttft:200,tpot:100"));
        assertEquals(4, s.completed());
        assertEquals(3, s.failed());
        assertEquals(Map.of("INVALID_ARGUMENT", 2, "RESOURCE_EXHAUSTED", 1), s.errors());
        assertEquals(2, s.goodRequests());
        assertEquals(1.0, s.goodput(), 1e-9);
        assertEquals(2.0, s.requestThroughput(), 1e-9);
        assertEquals(11, s.outputTokens());
        assertEquals(5.5, s.outputThroughput(), 1e-9);
        assertEquals(40, s.inputTokens());
        assertEquals(16 / 40.0, s.prefixHitRate(), 1e-9);
        assertEquals(4, s.ttft().count());
        assertEquals(3, s.tpot().count(), "the single-token request has no TPOT");
        assertEquals(7, s.itl().count(), "n - 1 ITLs per request");
        assertEquals((100 + 400 + 100 + 100) / 4.0, s.ttft().mean(), 1e-9);
        assertEquals((300 + 450 + 1000 + 1000) / 4.0, s.e2e().mean(), 1e-9);
        String text = s.text();
        assertTrue(text.contains("Request goodput"), text);
        assertTrue(text.contains("INVALID_ARGUMENT"), text);
    }
}
