package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.cli.RunCommandTest.Run;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import io.expertmesh.core.safetensors.Fp8Loading;
import io.expertmesh.core.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code run} on an FP8 checkpoint (weights kept FP8), and the one-line exit-2 error when an FP8 weight's block
 * scales are missing or misshapen.
 */
class Fp8CheckpointCommandTest {
    private static final String WEIGHT = "model.layers.1.mlp.experts.3.up_proj.weight";

    @TempDir
    Path tmp;

    @Test
    void run_fp8Checkpoint_generates() {
        Path fp8 = tmp.resolve("fp8");
        Fp8BlockQuantizer.quantize(RunCommandTest.FIXTURE, fp8);
        Run r = RunCommandTest.run("run", "--model", fp8.toString(), "--prompt-ids", "0,5,6,7", "--max-tokens", "4",
                "--temperature", "0", "--ignore-eos", "--json");
        assertEquals(0, r.exit(), r.err());
        assertEquals(4, r.out().strip().split("\n").length - 1, r.out());
    }

    @Test
    void run_fp8WeightWithoutScale_oneLineNamingTensorAndFile_exit2() throws IOException {
        Path bad = rewrite(tmp.resolve("missing"), false);
        Run r = RunCommandTest.run("run", "--model", bad.toString(), "--prompt-ids", "0,5");
        assertEquals(2, r.exit(), r.err());
        String line = r.err().strip();
        assertEquals(1, line.lines().count(), line);
        assertTrue(line.contains(WEIGHT) && line.contains(bad.resolve("model.safetensors").toString())
                && line.contains(WEIGHT + "_scale_inv"), line);
    }

    @Test
    void run_fp8WeightWithMisshapenScale_oneLineWithExpectedAndFound_exit2() throws IOException {
        Path bad = rewrite(tmp.resolve("misshapen"), true);
        Run r = RunCommandTest.run("run", "--model", bad.toString(), "--prompt-ids", "0,5");
        assertEquals(2, r.exit(), r.err());
        String line = r.err().strip();
        assertEquals(1, line.lines().count(), line);
        assertTrue(line.contains(WEIGHT + "_scale_inv") && line.contains("expected shape [1, 1]")
                && line.contains("found [2, 1]"), line);
    }

    /** The fixture as FP8, with {@link #WEIGHT}'s scales dropped or given the wrong shape. */
    private Path rewrite(Path dst, boolean misshapen) throws IOException {
        Path fp8 = tmp.resolve("fp8-src");
        if (!Files.exists(fp8)) {
            Fp8BlockQuantizer.quantize(RunCommandTest.FIXTURE, fp8);
        }
        Files.createDirectories(dst);
        try (Checkpoint cp = Checkpoint.open(fp8, Fp8Loading.NATIVE)) {
            SafetensorsWriter out = new SafetensorsWriter();
            for (String name : cp.names()) {
                if (name.equals(WEIGHT + Checkpoint.SCALE_SUFFIX)) {
                    if (misshapen) {
                        out.addF32(name, new float[] {1f, 1f}, 2, 1);
                    }
                    continue;
                }
                out.add(name, cp.info(name).dtype(), cp.raw(name), cp.info(name).shape());
            }
            out.write(dst.resolve(Checkpoint.SINGLE_FILE));
        }
        Files.copy(fp8.resolve("config.json"), dst.resolve("config.json"));
        return dst;
    }
}
