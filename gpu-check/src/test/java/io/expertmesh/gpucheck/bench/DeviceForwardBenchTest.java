package io.expertmesh.gpucheck.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.cuda.forward.CountingOps;
import io.expertmesh.cuda.forward.HostOps;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The decode benchmark's loop runs end to end (on HostOps, a fixture, tiny sizes); the numbers are the GPU's job. */
class DeviceForwardBenchTest {

    @Test
    void run_smallBatches_reportsARatePerBatch() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        List<Double> rates = DeviceForwardBench.run(Path.of("../core/src/test/resources/fixtures/qwen3-moe-tiny"),
                new CountingOps(new HostOps(), true), List.of(1, 3), 17, 3,
                new PrintStream(buf, true, StandardCharsets.UTF_8));
        assertEquals(2, rates.size());
        assertTrue(rates.stream().allMatch(r -> r > 0), rates.toString());
        String out = buf.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("batch   3, context 17"), out);
        // The counted work per step: one wait (the logits), whatever the batch.
        assertTrue(out.contains("to the host, 1.0 waits"), out);
    }
}
