package io.expertmesh.router.experts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.telemetry.LocalHistograms;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import io.grpc.Status;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.sdk.metrics.data.HistogramPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Dispatch latencies are recorded once, into OpenTelemetry, and status and hedging read them back from it. */
class DispatchStatsTest {
    static final long MS = TimeUnit.MILLISECONDS.toNanos(1);
    /** Well above the read-back percentiles' error bound for these ranges (about 1%). */
    static final double ERROR = 0.05;

    static WorkerClient client(String address) {
        return new WorkerClient(address, WorkerChannels.plaintext()); // never connects: no call is sent
    }

    static void assertNear(double expected, double got, String what) {
        assertEquals(expected, got, expected * ERROR, what);
    }

    @Test
    void statusPercentiles_readBackFromTheExportedInstruments() {
        InMemoryMetricReader exported = InMemoryMetricReader.create();
        try (Telemetry t = Telemetry.create(TelemetryConfig.withoutEndpoint("expertmesh-test"), null, exported);
             WorkerClient a = client("127.0.0.1:1");
             WorkerClient b = client("127.0.0.1:2")) {
            DispatchStats s = new DispatchStats(3, DispatchObserver.NONE, t.histograms());
            for (int i = 1; i <= 100; i++) {
                s.onRpc(1, a, 4, i * MS, Status.OK); // 1..100 ms: p50 50, p99 99
                s.onRpcTimes(1, a, i * MS, 1000L * i / 2, 1000L * i / 4);
                s.onLayerDone(1, 4, 2 * i * MS);
            }
            s.onRpc(1, a, 4, 5_000 * MS, Status.DEADLINE_EXCEEDED); // a failure: counted, not in the latency
            s.onRpc(2, b, 8, 7 * MS, Status.OK);

            s.collect();
            WorkerClient.Stats sa = s.workerStats(a);
            assertEquals(101, sa.calls());
            assertEquals(1, sa.failures());
            assertEquals(400, sa.tokens());
            assertNear(50, sa.p50Millis(), "p50 " + sa);
            assertNear(99, sa.p99Millis(), "p99 " + sa);
            WorkerClient.Stats sb = s.workerStats(b);
            assertNear(7, sb.p50Millis(), "b's own calls only: " + sb);
            assertNear(7, sb.p99Millis(), "b's own calls only: " + sb);

            assertEquals(100, s.layerLatency(1).count());
            assertNear(198, s.layerLatency(1).valueAtPercentile(99) * 1000, "layer p99");
            assertEquals(0, s.layerLatency(2).count(), "layer 2 got RPCs but no whole-layer dispatch");

            ClusterStatus.Breakdown d = s.breakdown();
            assertEquals(100, d.calls());
            assertNear(25, d.queueP50Millis(), "queue " + d);
            assertNear(12.5, d.computeP50Millis(), "compute " + d);
            assertNear(0.25 * 99, d.overheadP99Millis(), "overhead " + d);

            // The same instruments are exported once, with their explicit buckets.
            MetricData rpc = exported.collectAllMetrics().stream()
                    .filter(m -> m.getName().equals(DispatchMeters.RPC_DURATION)).findFirst().orElseThrow();
            long okCalls = rpc.getHistogramData().getPoints().stream()
                    .filter(p -> "OK".equals(p.getAttributes().get(AttributeKey.stringKey("status"))))
                    .mapToLong(HistogramPointData::getCount).sum();
            assertEquals(101, okCalls);
        }
    }

    @Test
    void hedgeTime_followsTheRecentP99_andForgetsASlowStart() {
        AtomicLong now = new AtomicLong(Duration.ofHours(1).toNanos());
        try (LocalHistograms h = LocalHistograms.standalone(new LocalHistograms(now::get, LocalHistograms.SLOT,
                LocalHistograms.SLOTS));
             WorkerClient c = client("127.0.0.1:1")) {
            DispatchStats s = new DispatchStats(2, DispatchObserver.NONE, h);
            assertEquals(Long.MAX_VALUE, c.hedgeAfterNanos(2, Duration.ZERO, 1), "no answer yet: no hedging");
            for (int i = 0; i < 64; i++) {
                s.onRpc(1, c, 1, 800 * MS, Status.OK); // a slow start (loading, a cold JIT)
                now.addAndGet(100 * MS);
            }
            assertEquals(Long.MAX_VALUE, c.hedgeAfterNanos(2, Duration.ZERO, 65), "fewer calls than minCalls");
            assertNear(1600 * MS, c.hedgeAfterNanos(2, Duration.ZERO, 32), "2 × the 800 ms p99");

            now.addAndGet(Duration.ofMinutes(2).toNanos());
            for (int i = 0; i < 64; i++) {
                s.onRpc(1, c, 1, 10 * MS, Status.OK);
                now.addAndGet(100 * MS);
            }
            assertNear(20 * MS, c.hedgeAfterNanos(2, Duration.ZERO, 32),
                    "the slow start is over a minute old: forgotten");
            assertEquals(250 * MS, c.hedgeAfterNanos(2, Duration.ofMillis(250), 32), "never below the floor");

            now.addAndGet(Duration.ofMinutes(5).toNanos());
            for (int i = 0; i < 10; i++) {
                s.onRpc(1, c, 1, 0, Status.UNAVAILABLE); // a worker that stopped answering
            }
            assertNear(20 * MS, c.hedgeAfterNanos(2, Duration.ZERO, 32), "keeps its last p99");
            s.collect();
            assertTrue(s.workerStats(c).p99Millis() >= 800 * (1 - ERROR), "status keeps every call since start");
        }
    }
}
