package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import com.fasterxml.jackson.databind.JsonNode;
import io.expertmesh.cli.RunCommandTest.Run;
import io.expertmesh.cuda.CudaDevice;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** {@code --device cpu|cuda|auto} on the commands that load a model. */
class DeviceOptionTest {

    private static String referenceIds() throws Exception {
        JsonNode ref = RunCommandTest.JSON.readTree(RunCommandTest.FIXTURE.resolve("reference.json").toFile());
        return String.join(",", ref.get("prompt_ids").valueStream().map(JsonNode::asText).toList());
    }

    private static int[] greedyTokens(String device) throws Exception {
        Run r = RunCommandTest.run("run", "--model", RunCommandTest.FIXTURE.toString(), "--prompt-ids",
                referenceIds(), "--max-tokens", "6", "--temperature", "0", "--ignore-eos", "--json", "--device",
                device);
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().strip().split("\n");
        return Arrays.stream(lines, 0, lines.length - 1)
                .mapToInt(l -> {
                    try {
                        return RunCommandTest.JSON.readTree(l).get("token_id").asInt();
                    } catch (Exception e) {
                        throw new AssertionError(l, e);
                    }
                }).toArray();
    }

    @Test
    void run_deviceAuto_sameGreedyTokensAsCpu() throws Exception {
        // Here (no GPU) auto falls back to the CPU; on a GPU host it runs the products on the GPU. Either way the
        // tokens are the CPU's.
        assertEquals(Arrays.toString(greedyTokens("cpu")), Arrays.toString(greedyTokens("auto")));
    }

    @Test
    void run_deviceCudaWithoutGpu_oneLineUserErrorExit2() throws Exception {
        assumeFalse(CudaDevice.available(), "a GPU is present");
        Run r = RunCommandTest.run("run", "--model", RunCommandTest.FIXTURE.toString(), "--prompt-ids",
                referenceIds(), "--max-tokens", "2", "--device", "cuda");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().startsWith("expertmesh run: --device cuda: no GPU: "), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
    }

    @Test
    void worker_deviceCudaWithoutGpu_userErrorExit2() {
        assumeFalse(CudaDevice.available(), "a GPU is present");
        Run r = RunCommandTest.run("worker", "--model", RunCommandTest.FIXTURE.toString(), "--port", "0", "--device",
                "cuda");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().startsWith("expertmesh worker: --device cuda: no GPU: "), r.err());
    }

    @Test
    void run_unknownDevice_rejectedWithMessage() throws Exception {
        Run r = RunCommandTest.run("run", "--model", RunCommandTest.FIXTURE.toString(), "--prompt-ids",
                referenceIds(), "--device", "tpu");
        assertEquals(2, r.exit(), r.err());
        assertEquals("expertmesh run: Invalid value for option '--device': expected one of [cpu, cuda, auto] "
                + "(case-insensitive) but was 'tpu' (see expertmesh run --help)", r.err().strip());
    }

    @Test
    void deviceAndKernels_parsedAsEnums_anyCase() {
        RunCommand run = (RunCommand) Main.commandLine(picocli.CommandLine.defaultFactory(), java.util.Map.of())
                .parseArgs("run", "--device", "CUDA", "--kernels", "Scalar").subcommand().commandSpec().userObject();
        assertEquals(ModelOptions.Device.cuda, run.model.device);
        assertEquals(ModelOptions.KernelSet.scalar, run.model.kernels);
    }
}
