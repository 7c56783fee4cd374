package io.expertmesh.core.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8E4M3;
import io.expertmesh.core.tensor.Matrix;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns a BF16/F32 checkpoint into the form DeepSeek publishes V3 in: linear-layer weights as F8_E4M3 with one
 * dequant multiplier per 128×128 block ({@code <name>_scale_inv}, F32, shape [⌈rows/128⌉, ⌈cols/128⌉]).
 *
 * <p>Only the matrices DeepSeek quantizes become FP8: the attention projections and the MLP projections of dense
 * layers, routed experts and shared experts. Embeddings, {@code lm_head}, norms, the router gate
 * ({@code mlp.gate.weight}) and {@code e_score_correction_bias} keep their type, as in the official release. Each
 * block's multiplier is {@code amax / 448}, so the largest magnitude maps to the largest E4M3 value; an all-zero
 * block gets multiplier 1.
 *
 * <p>{@link #writeDequantizedTwin} writes the BF16 checkpoint that an FP8 one dequantizes to, computed here without
 * going through {@link Checkpoint}, so tests can check that the loader's FP8 path yields exactly the twin's bits
 * and models can be compared on equal weights. Output tensors are held off-heap until written; sizes are bounded by
 * memory, which suits test, default and benchmark models rather than 671B conversions.
 */
public final class Fp8BlockQuantizer {
    /** Block edge of the DeepSeek-V3 scales. */
    public static final int BLOCK = 128;

    private static final Logger log = LoggerFactory.getLogger(Fp8BlockQuantizer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CONFIG = "config.json";

    /** One quantized matrix: row-major E4M3 bytes and row-major block multipliers. */
    public record Quantized(MemorySegment fp8, float[] scaleInv, int rows, int cols) {
        public int scaleRows() {
            return (rows + BLOCK - 1) / BLOCK;
        }

        public int scaleCols() {
            return (cols + BLOCK - 1) / BLOCK;
        }
    }

    private Fp8BlockQuantizer() {
    }

    /** Whether DeepSeek stores {@code name} (of this shape) as FP8 with block scales. */
    public static boolean isQuantized(String name, long[] shape) {
        if (shape.length != 2 || !name.startsWith("model.layers.") || !name.endsWith(".weight")) {
            return false;
        }
        boolean attention = name.contains(".self_attn.") && !name.contains("layernorm");
        boolean mlp = name.contains(".mlp.") && name.endsWith("_proj.weight");
        return attention || mlp;
    }

    /** Quantizes {@code w} in 128×128 blocks; the FP8 bytes are allocated in {@code arena}. */
    public static Quantized quantize(Matrix w, Arena arena) {
        int rows = w.rows();
        int cols = w.cols();
        int scaleCols = (cols + BLOCK - 1) / BLOCK;
        int scaleRows = (rows + BLOCK - 1) / BLOCK;
        float[] scaleInv = new float[scaleRows * scaleCols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int b = (r / BLOCK) * scaleCols + c / BLOCK;
                scaleInv[b] = Math.max(scaleInv[b], Math.abs(w.get(r, c)));
            }
        }
        for (int b = 0; b < scaleInv.length; b++) {
            scaleInv[b] = scaleInv[b] == 0f ? 1f : scaleInv[b] / Fp8E4M3.MAX;
        }
        MemorySegment fp8 = arena.allocate((long) rows * cols);
        for (int r = 0; r < rows; r++) {
            long base = (long) r * cols;
            for (int c = 0; c < cols; c++) {
                float s = scaleInv[(r / BLOCK) * scaleCols + c / BLOCK];
                fp8.set(ValueLayout.JAVA_BYTE, base + c, Fp8E4M3.fromFloat(w.get(r, c) / s));
            }
        }
        return new Quantized(fp8, scaleInv, rows, cols);
    }

    /** Converts the checkpoint in {@code srcDir} to FP8 in {@code dstDir} as one {@code model.safetensors}. */
    public static void quantize(Path srcDir, Path dstDir) {
        quantize(srcDir, dstDir, 1);
    }

    /**
     * Converts the checkpoint in {@code srcDir} to FP8 in {@code dstDir}, as {@code shards} shards with an index when
     * {@code shards > 1}. Copies {@code config.json} with a {@code quantization_config} added, and the other
     * non-weight files as they are.
     */
    public static void quantize(Path srcDir, Path dstDir, int shards) {
        int count = 0;
        try (Checkpoint src = Checkpoint.open(srcDir); Arena arena = Arena.ofConfined()) {
            SafetensorsWriter out = new SafetensorsWriter();
            for (String name : src.names()) {
                SafetensorsFile file = src.file(name);
                long[] shape = file.shape(name);
                String dtype = file.dtypeName(name);
                boolean convertible = dtype.equals("F32") || dtype.equals("BF16") || dtype.equals("F16");
                if (isQuantized(name, shape) && convertible && shape[0] > 0 && shape[1] > 0) {
                    Quantized q = quantize(src.matrix(name, (int) shape[0], (int) shape[1]), arena);
                    out.add(name, DType.F8_E4M3, q.fp8(), shape);
                    out.addF32(name + Checkpoint.SCALE_SUFFIX, q.scaleInv(), q.scaleRows(), q.scaleCols());
                    count++;
                } else {
                    out.add(name, dtype, file.data(name), shape);
                }
            }
            write(out, dstDir, shards);
            copyOtherFiles(srcDir, dstDir);
            rewriteConfig(srcDir, dstDir, true);
        }
        log.info("Quantized {} matrices of {} to FP8 (128x128 blocks) in {}", count, srcDir, dstDir);
    }

    /**
     * Writes to {@code dstDir} the BF16 checkpoint the FP8 one in {@code fp8Dir} stands for: every F8_E4M3 weight
     * dequantized with its block multipliers and rounded to BF16 (ties to even), its {@code _scale_inv} dropped,
     * everything else copied. {@code config.json} loses its {@code quantization_config}.
     */
    public static void writeDequantizedTwin(Path fp8Dir, Path dstDir) {
        int[] block = Checkpoint.blockSize(fp8Dir.resolve(CONFIG));
        try (Checkpoint src = Checkpoint.open(fp8Dir); Arena arena = Arena.ofConfined()) {
            SafetensorsWriter out = new SafetensorsWriter();
            for (String name : src.names()) {
                SafetensorsFile file = src.file(name);
                long[] shape = file.shape(name);
                String dtype = file.dtypeName(name);
                if (name.endsWith(Checkpoint.SCALE_SUFFIX) && isFp8(src, name.substring(0,
                        name.length() - Checkpoint.SCALE_SUFFIX.length()))) {
                    continue;
                }
                if (dtype.equals("F8_E4M3") && shape.length == 2) {
                    out.add(name, DType.BF16, dequantize(src, name, (int) shape[0], (int) shape[1], block, arena),
                            shape);
                } else {
                    out.add(name, dtype, file.data(name), shape);
                }
            }
            write(out, dstDir, 1);
            copyOtherFiles(fp8Dir, dstDir);
            rewriteConfig(fp8Dir, dstDir, false);
        }
        log.info("Wrote the BF16 twin of {} to {}", fp8Dir, dstDir);
    }

    private static boolean isFp8(Checkpoint cp, String name) {
        return cp.has(name) && cp.file(name).dtypeName(name).equals("F8_E4M3");
    }

    private static MemorySegment dequantize(Checkpoint src, String name, int rows, int cols, int[] block,
                                            Arena arena) {
        int scaleCols = (cols + block[1] - 1) / block[1];
        int scaleRows = (rows + block[0] - 1) / block[0];
        float[] scales = src.vector(name + Checkpoint.SCALE_SUFFIX, scaleRows * scaleCols);
        MemorySegment fp8 = src.raw(name);
        MemorySegment bf16 = arena.allocate((long) rows * cols * Short.BYTES, Short.BYTES);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                long i = (long) r * cols + c;
                float s = scales[(r / block[0]) * scaleCols + c / block[1]];
                float v = Fp8E4M3.toFloat(fp8.get(ValueLayout.JAVA_BYTE, i)) * s;
                bf16.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat(v));
            }
        }
        return bf16;
    }

    private static void write(SafetensorsWriter out, Path dstDir, int shards) {
        try {
            Files.createDirectories(dstDir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dstDir, e);
        }
        if (shards > 1) {
            out.writeSharded(dstDir, shards);
        } else {
            out.write(dstDir.resolve(Checkpoint.SINGLE_FILE));
        }
    }

    /** Copies tokenizer, generation config and other non-weight files; weights and config.json are written anew. */
    private static void copyOtherFiles(Path srcDir, Path dstDir) {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(srcDir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                if (Files.isRegularFile(p) && !n.endsWith(".safetensors") && !n.equals(Checkpoint.INDEX_FILE)
                        && !n.equals(CONFIG)) {
                    Files.copy(p, dstDir.resolve(n), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy files from " + srcDir + " to " + dstDir, e);
        }
    }

    private static void rewriteConfig(Path srcDir, Path dstDir, boolean fp8) {
        Path config = srcDir.resolve(CONFIG);
        if (!Files.isRegularFile(config)) {
            log.warn("No {} in {}; the converted checkpoint has none either", CONFIG, srcDir);
            return;
        }
        try {
            ObjectNode root = (ObjectNode) JSON.readTree(config.toFile());
            if (fp8) {
                ObjectNode q = root.putObject("quantization_config");
                q.put("quant_method", "fp8");
                q.put("fmt", "e4m3");
                q.put("activation_scheme", "dynamic");
                q.putArray("weight_block_size").add(BLOCK).add(BLOCK);
            } else {
                root.remove("quantization_config");
                root.put("torch_dtype", "bfloat16");
            }
            JSON.writerWithDefaultPrettyPrinter().writeValue(dstDir.resolve(CONFIG).toFile(), root);
        } catch (IOException | ClassCastException e) {
            throw new ModelLoadException("cannot rewrite " + config + " into " + dstDir + ": " + e.getMessage(), e);
        }
    }
}
