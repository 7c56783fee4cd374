package io.expertmesh.core.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import io.expertmesh.core.tensor.Quantization;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An FP8 block-scaled checkpoint (the official DeepSeek-V3 format) runs exactly like its dequantized BF16 twin. */
class Fp8CheckpointTest {
    @TempDir
    Path tmp;

    @Test
    void forward_fp8Checkpoint_equalsDequantizedBf16TwinBitForBit() throws IOException {
        Path fp8 = tmp.resolve("fp8");
        Path twin = tmp.resolve("twin");
        Fp8BlockQuantizer.quantize(LoadedModelTest.FIXTURE, fp8, 2);
        Fp8BlockQuantizer.writeDequantizedTwin(fp8, twin);
        int[] prompt = {0, 818, 726, 297, 56, 207, 375, 667};
        assertArrayEquals(logits(twin, prompt), logits(fp8, prompt));
    }

    @Test
    void forward_fp8CheckpointQuantizedInt4_equalsDequantizedBf16TwinQuantizedInt4BitForBit() throws IOException {
        // --quantize int4 on an FP8 checkpoint quantizes the BF16 it is dequantized to at load.
        Path fp8 = tmp.resolve("fp8");
        Path twin = tmp.resolve("twin");
        Fp8BlockQuantizer.quantize(LoadedModelTest.FIXTURE, fp8, 2);
        Fp8BlockQuantizer.writeDequantizedTwin(fp8, twin);
        int[] prompt = {0, 818, 726, 297, 56, 207, 375, 667};
        float[] int4 = logits(fp8, prompt, Quantization.INT4);
        assertArrayEquals(logits(twin, prompt, Quantization.INT4), int4);
        assertFalse(java.util.Arrays.equals(logits(fp8, prompt, Quantization.NONE), int4), "int4 was applied");
    }

    private static float[] logits(Path dir, int[] prompt) throws IOException {
        return logits(dir, prompt, Quantization.NONE);
    }

    private static float[] logits(Path dir, int[] prompt, Quantization q) throws IOException {
        try (LoadedModel m = LoadedModel.open(dir, new VectorKernels(ComputePool.create(2)), (a, b) -> { }, null,
                q)) {
            float[] out = new float[prompt.length * m.config().vocabSize()];
            m.transformer().forward(ForwardBatch.ofSequenceAllLogits(prompt, 0,
                    m.transformer().newCache(prompt.length)), out);
            return out;
        }
    }
}
