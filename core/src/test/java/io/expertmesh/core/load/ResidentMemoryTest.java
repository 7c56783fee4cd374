package io.expertmesh.core.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ModelBuilder;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tensor.Quantization;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A load that copies the weights it reads (quantized, or woven for the native kernels) lets go of the checkpoint's
 * mapped pages, so the bytes read while copying do not stay resident beside the copy. Measured from this process's
 * own page tables ({@code /proc/self/smaps}), so Linux only.
 */
class ResidentMemoryTest {
    private static final Path SMAPS = Path.of("/proc/self/smaps");

    @TempDir
    Path tmp;

    private Path dir;
    private Path file;

    @BeforeEach
    void writeModel() throws IOException {
        assumeTrue(Files.isReadable(SMAPS), "no /proc/self/smaps on this system");
        // The random model's shape with a small vocabulary: about 10 MB, most of it experts.
        ObjectNode c = SyntheticModels.randomConfig().put("vocab_size", 2048);
        dir = tmp.resolve("model");
        SyntheticModels.writeModel(c, 7, dir);
        file = dir.resolve("model.safetensors").toRealPath();
    }

    @Test
    void checkpoint_releaseResident_dropsPagesAndKeepsBytes() throws IOException {
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            Matrix m = ckpt.matrix("model.layers.1.mlp.experts.0.up_proj.weight", 192, 256);
            long before = touch(m);
            long resident = residentBytes(file);
            assertTrue(resident >= m.data().byteSize(), "read " + m.data().byteSize() + " bytes, resident " + resident);

            ckpt.releaseResident();

            long after = residentBytes(file);
            assertTrue(after < m.data().byteSize() / 4, "still resident after release: " + after + " bytes");
            assertEquals(before, touch(m), "the bytes read back after the release differ");
        }
    }

    @Test
    void quantizedLoad_leavesLittleOfTheCheckpointResident() throws IOException {
        long size = Files.size(file);
        // No quantized-weight cache: every projection is read from the checkpoint and quantized.
        try (ComputePool pool = ComputePool.create(1);
             Checkpoint ckpt = Checkpoint.open(dir);
             Transformer model = new ModelBuilder(ModelConfig.load(dir), ckpt, new VectorKernels(pool))
                     .quantize(Quantization.INT8).build()) {
            long resident = residentBytes(file);
            // Quantizing read every projection (most of the file); without the release all of it stays mapped in.
            assertTrue(resident < size / 8, "after an int8 load " + resident + " of " + size
                    + " checkpoint bytes are resident");
        }
    }

    @Test
    void wovenLoad_leavesLittleOfTheCheckpointResident() throws IOException {
        long size = Files.size(file);
        try (ComputePool pool = ComputePool.create(2);
             Checkpoint ckpt = Checkpoint.open(dir);
             Transformer model = buildIfNative(new VectorKernels(pool), ckpt)) {
            long resident = residentBytes(file);
            // Every BF16 projection was copied into its woven layout; its mapped pages are let go.
            assertTrue(resident < size / 8, "after a woven load " + resident + " of " + size
                    + " checkpoint bytes are resident");
        }
    }

    /** The model built with {@code kernels}; skips the test (assumption) when they are not the native ones. */
    private Transformer buildIfNative(VectorKernels kernels, Checkpoint ckpt) throws IOException {
        assumeTrue(kernels.matmulKind().startsWith("native"), "weaving needs the native kernels");
        return new ModelBuilder(ModelConfig.load(dir), ckpt, kernels).build();
    }

    /** Reads every byte of {@code m} (maps its pages in); returns a checksum of them. */
    private static long touch(Matrix m) {
        long sum = 0;
        for (long i = 0; i < m.data().byteSize(); i++) {
            sum = sum * 31 + m.data().get(ValueLayout.JAVA_BYTE, i);
        }
        return sum;
    }

    /** This process's resident bytes of its mappings of {@code file}. */
    private static long residentBytes(Path file) throws IOException {
        long kib = 0;
        boolean inFile = false;
        for (String line : Files.readAllLines(SMAPS)) {
            if (line.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                inFile = line.endsWith(" " + file);
            } else if (inFile && line.startsWith("Rss:")) {
                kib += Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return kib * 1024;
    }
}
