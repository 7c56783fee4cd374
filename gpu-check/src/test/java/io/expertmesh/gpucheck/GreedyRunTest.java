package io.expertmesh.gpucheck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.expertmesh.cuda.CudaDevice;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The GPU pack's greedy launcher: it generates on the CPU here, and names bad arguments. */
class GreedyRunTest {
    private static final String FIXTURE = "../core/src/test/resources/fixtures/mixtral-tiny";

    private static String run(String... args) throws Exception {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, GreedyRun.run(args));
        } finally {
            System.setOut(old);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    @Test
    void cpuAndAuto_sameTokens() throws Exception {
        String cpu = run(FIXTURE, "1,17,42", "5", "cpu");
        assertTrue(cpu.contains("tokens: ["), cpu);
        String tokens = cpu.substring(cpu.indexOf("tokens:"));
        assertEquals(5, tokens.split(",").length, tokens);
        assumeFalse(CudaDevice.available(), "on a GPU host auto takes the GPU");
        String auto = run(FIXTURE, "1,17,42", "5", "auto");
        assertEquals(tokens, auto.substring(auto.indexOf("tokens:")));
    }

    @Test
    void badArguments_named() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> GreedyRun.run(new String[]{"/nope", "1"}))
                .getMessage().contains("does not exist"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> GreedyRun.run(new String[]{FIXTURE, "1,x"}))
                .getMessage().contains("integers"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> GreedyRun.run(new String[]{FIXTURE, "1", "2", "tpu"})).getMessage().contains("cpu, cuda or auto"));
    }
}
