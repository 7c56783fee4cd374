package io.expertmesh.bench.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.tensor.Quantization;
import io.expertmesh.router.experts.WireFormat;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link ModelBench} on the tiny fixture checkpoint, set up through {@link ModelSetup} alone (no command line). */
class ModelBenchTest {
    static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");

    /** The CPU, vector kernels, one thread, {@code q}. */
    private static ModelSetup cpu(Path model, Quantization q) {
        return new ModelSetup() {
            @Override
            public Path model() {
                return model;
            }

            @Override
            public Quantization quantization() {
                return q;
            }

            @Override
            public Kernels newKernels() {
                return newCpuKernels();
            }

            @Override
            public Kernels newCpuKernels() {
                return new VectorKernels(ComputePool.create(1));
            }

            @Override
            public ForwardBackend.Factory forwardBackend() {
                return ForwardBackend.CPU;
            }

            @Override
            public ExpertRunner.Factory expertRunners() {
                return ExpertRunner.Factory.cpu(q);
            }

            @Override
            public String describe() {
                return "1 thread, vector kernels";
            }
        };
    }

    private static ModelBench.Settings settings(List<Integer> batches, boolean engine, boolean compareQuantize) {
        return new ModelBench.Settings(batches, 2, 8, 8, engine, 4, false, 0, 2, WireFormat.EXACT, compareQuantize,
                1);
    }

    @Test
    void rawForward_reportsPrefillAndEachDecodeBatch() throws Exception {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        JsonNode r = new ModelBench(cpu(FIXTURE, Quantization.NONE), settings(List.of(1, 3), false, false),
                new PrintStream(err, true, StandardCharsets.UTF_8)).run();
        assertEquals("none", r.get("quantize").asText());
        assertEquals(8, r.get("prefill_tokens").asInt());
        assertTrue(r.get("prefill_tokens_per_second").asDouble() > 0, r.toString());
        assertEquals(List.of("1", "3"), r.get("decode").propertyStream().map(java.util.Map.Entry::getKey).toList());
        assertTrue(r.get("decode").get("3").get("tokens_per_second").asDouble() > 0, r.toString());
        assertTrue(r.get("weight_bytes_per_token").asDouble() > 0, r.toString());
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("decode batch  3:"), err.toString());
    }

    @Test
    void compareQuantize_reportsEachModeAndTheirRatios_int8ReadsFewerBytes() throws Exception {
        JsonNode r = new ModelBench(cpu(FIXTURE, Quantization.NONE), settings(List.of(1), false, true),
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)).run();
        JsonNode q = r.get("quantize_comparison");
        for (Quantization mode : Quantization.values()) {
            assertTrue(q.get(mode.label()).get("decode_batch_1_tokens_per_second").asDouble() > 0, q.toString());
        }
        double int8Bytes = q.get("int8_over_none").get("weight_bytes_per_token").asDouble();
        assertTrue(int8Bytes > 0 && int8Bytes < 1, "int8/none bytes per token " + int8Bytes);
        assertEquals(q.get("none").get("weight_bytes_per_token").asDouble(), r.get("weight_bytes_per_token").asDouble());
    }

    @Test
    void workers_withAddedLatency_everyModeInTurn_tokensEqual_callsTakeTheRoundTrip() throws Exception {
        ModelBench.Settings s = new ModelBench.Settings(List.of(1, 2), 2, 8, 8, true, 4, false, 2, 2, WireFormat.EXACT,
                false, 2, 1.0);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        JsonNode r = new ModelBench(cpu(FIXTURE, Quantization.NONE), s,
                new PrintStream(err, true, StandardCharsets.UTF_8)).run().get("expert_parallel");
        String log = err.toString(StandardCharsets.UTF_8);
        assertEquals(1.0, r.get("added_latency_ms_each_way").asDouble(), r.toString());
        assertTrue(r.get("greedy_tokens_equal_1").asBoolean(), log);
        assertTrue(r.get("greedy_tokens_equal_2").asBoolean(), log);
        assertTrue(r.get("greedy_tokens_equal_auto").asBoolean(), log);
        for (String key : List.of("2_workers_1_micro_batches", "2_workers_2_micro_batches",
                "2_workers_auto_micro_batches")) {
            for (String n : List.of("1", "2")) {
                JsonNode m = r.get(key).get(n);
                assertTrue(m.get("tokens_per_s").asDouble() > 0, r.toString());
                // 1 ms each way: no layer's dispatch can return sooner than the round trip
                assertTrue(m.get("dispatch_p50_ms").asDouble() >= 2.0, r.toString());
            }
        }
        assertTrue(r.get("in_process").get("2").asDouble() > 0, r.toString());
        assertTrue(log.contains("round 2: 2 workers, 2 micro-batches"), log);
        assertTrue(log.contains("round 2: 2 workers, 2 where they pay"), log);
        assertTrue(log.contains("2 vs 1 micro-batches"), log);
        assertTrue(r.get("skew_worker_imbalance_before") == null, "the rebalance test is skipped with a delay");
    }

    @Test
    void badSettings_areRefusedBeforeMeasuring() {
        assertThrows(IllegalArgumentException.class, () -> settings(List.of(0), false, false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new ModelBench(cpu(FIXTURE, Quantization.NONE), settings(List.of(1), true, false), System.err));
        assertTrue(e.getMessage().contains("--workers"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new ModelBench.Settings(List.of(1), 2, 8, 8, false, 4,
                false, 0, 2, WireFormat.EXACT, false, 1, 0, -1));
        assertTrue(e.getMessage().contains("--warm-up"), e.getMessage());
    }

    @Test
    void warmUp_runsUntimedWorkForItsTimeFirst_andIsReported() throws Exception {
        // Zero: exactly one untimed prefill. 0.3 s: the warm-up alone (a prefill, then decode steps at batch 1)
        // lasts at least 0.3 s each, however fast or busy the machine; no upper bound is asserted.
        for (double seconds : new double[] {0, 0.3}) {
            ModelBench.Settings s = new ModelBench.Settings(List.of(1), 2, 8, 8, false, 4, false, 0, 2,
                    WireFormat.EXACT, false, 1, 0, seconds);
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            long start = System.nanoTime();
            JsonNode r = new ModelBench(cpu(FIXTURE, Quantization.NONE), s,
                    new PrintStream(err, true, StandardCharsets.UTF_8)).run();
            double elapsed = (System.nanoTime() - start) / 1e9;
            String log = err.toString(StandardCharsets.UTF_8);
            assertEquals(seconds, r.get("warm_up_seconds").asDouble(), r.toString());
            double best = r.get("prefill_tokens_per_second").asDouble();
            double median = r.get("prefill_tokens_per_second_median").asDouble();
            assertTrue(median > 0 && median <= best, r.toString());
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("after (\\d+) untimed").matcher(log);
            assertTrue(m.find(), log);
            if (seconds == 0) {
                assertEquals(1, Integer.parseInt(m.group(1)), log);
            } else {
                assertTrue(elapsed >= 2 * seconds, "two warm-ups of " + seconds + " s took " + elapsed + " s");
            }
        }
    }
}
