package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code bench-model --model DIR}: the raw forward measurements on a real checkpoint, FP8 read natively. */
class BenchModelOnCheckpointTest {
    static final Path FIXTURE = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/bf16");

    @TempDir
    Path tmp;

    private static JsonNode bench(String... extra) throws Exception {
        String[] args = {"bench-model", "--batches", "1,3", "--steps", "2", "--prefill", "8", "--context", "8",
                "--threads", "1", "--warm-up", "0.2", "--json"};
        String[] all = java.util.Arrays.copyOf(args, args.length + extra.length);
        System.arraycopy(extra, 0, all, args.length, extra.length);
        RunCommandTest.Run r = RunCommandTest.run(all);
        assertEquals(0, r.exit(), r.err());
        return RunCommandTest.JSON.readTree(r.out().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b)
                .orElseThrow());
    }

    @Test
    void fp8Checkpoint_readsFewerWeightBytesPerTokenThanItsBf16Source() throws Exception {
        Path fp8 = tmp.resolve("fp8");
        Fp8BlockQuantizer.quantize(FIXTURE, fp8);
        JsonNode bf16 = bench("--model", FIXTURE.toString());
        JsonNode native8 = bench("--model", fp8.toString());
        assertTrue(native8.get("decode").get("1").get("tokens_per_second").asDouble() > 0, native8.toString());
        double ratio = native8.get("weight_bytes_per_token").asDouble() / bf16.get("weight_bytes_per_token").asDouble();
        // FP8 projections are 1 byte (+ a scale per 128x128), BF16 2; the tiny model's F32 kv_b and BF16 head stay
        assertTrue(ratio < 0.9, "fp8/bf16 bytes " + ratio);
    }

    @Test
    void modelWithEngineButNoWorkers_isRefused() {
        RunCommandTest.Run r = RunCommandTest.run("bench-model", "--engine", "--model", FIXTURE.toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--workers"), r.err());
    }
}
