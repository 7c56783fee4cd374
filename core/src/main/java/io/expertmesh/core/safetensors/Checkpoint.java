package io.expertmesh.core.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Fp8E4M3;
import io.expertmesh.core.tensor.Fp8Matrix;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tensor.WeightSource;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The weights of one model directory, as the model code sees them: tensors by Hugging Face name, handed out as
 * {@link Matrix} (what kernels read) or small {@code float[]} vectors.
 *
 * <p>Reads the files Hugging Face's loader reads: those listed by {@code model.safetensors.index.json}'s
 * {@code weight_map} (the sharded form, {@code model-0000x-of-0000y.safetensors}), else {@code model.safetensors}.
 * Other {@code *.safetensors} files in the directory are not read: a release may ship the same weights again in
 * another layout beside the shards (Mistral's {@code consolidated.safetensors}), whose tensors would be duplicates
 * or foreign names. Every file is memory-mapped into one shared {@link Arena} owned here,
 * so {@link #close()} unmaps everything and frees every conversion at once; matrices must not be used afterwards.
 *
 * <p>Kernels read F32, BF16 and FP8 with block scales, so:
 * <ul>
 *   <li>F32 and BF16 matrices are zero-copy slices of the mapped file;</li>
 *   <li>F16 is converted once to an off-heap F32 copy (exact, and F32 kernels are the fast path that exists);</li>
 *   <li>F8_E4M3 (the official DeepSeek-V3 release) with its 128×128 block scales ({@code <name>_scale_inv}, the
 *       dequant multipliers) stays FP8 by default ({@link Fp8Loading#NATIVE}): the matrix is the mapped bytes
 *       plus a small grid of the multipliers times 2^120 (see {@code Matrix}), 1 byte per weight, and the kernels
 *       widen it on the fly to exactly {@code fp8(w[r][c]) · scale_inv[r/128][c/128]} in float. A matrix holding
 *       one of e4m3fn's NaN codes (0x7F, 0xFF: quantizers saturate to ±448, so only a corrupt file has them) is
 *       refused, since the kernels' widening reads them as ±480. With {@link Fp8Loading#DEQUANTIZE_BF16}
 *       ({@code -Dexpertmesh.fp8=bf16}) each value is instead dequantized at load into an off-heap BF16 copy,
 *       rounded to nearest even (2 bytes per weight), the path before native FP8.</li>
 * </ul>
 * Conversions happen on the first request for a tensor and are cached, so asking twice costs nothing.
 * The block size comes from {@code config.json}'s {@code quantization_config.weight_block_size}, 128×128 when absent.
 *
 * <p>Thread-safe: tensors may be requested from several loader threads at once.
 */
public final class Checkpoint implements WeightSource, AutoCloseable {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";
    /** Suffix of the DeepSeek-V3 FP8 block-scale tensors. */
    public static final String SCALE_SUFFIX = "_scale_inv";
    static final int DEFAULT_BLOCK = 128;

    private static final Logger log = LoggerFactory.getLogger(Checkpoint.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final Path dir;
    private final Arena arena;
    private final Map<String, SafetensorsFile> fileOf;
    private final String whereToLook;
    private final int blockRows;
    private final int blockCols;
    private final Fp8Loading fp8;
    private final Map<String, Matrix> converted = new ConcurrentHashMap<>();
    private volatile boolean closed;

    private Checkpoint(Path dir, Arena arena, Map<String, SafetensorsFile> fileOf, String whereToLook,
                       int blockRows, int blockCols, Fp8Loading fp8) {
        this.fp8 = fp8;
        this.dir = dir;
        this.arena = arena;
        this.fileOf = fileOf;
        this.whereToLook = whereToLook;
        this.blockRows = blockRows;
        this.blockCols = blockCols;
    }

    /**
     * Opens the checkpoint in {@code modelDir}, FP8 weights loaded as {@link Fp8Loading#fromSystemProperty()} says;
     * see the class comment for the layouts accepted.
     */
    public static Checkpoint open(Path modelDir) {
        return open(modelDir, Fp8Loading.fromSystemProperty());
    }

    /** Opens the checkpoint in {@code modelDir}, FP8 weights loaded as {@code fp8} says. */
    public static Checkpoint open(Path modelDir, Fp8Loading fp8) {
        if (!Files.isDirectory(modelDir)) {
            throw new ModelLoadException("model directory " + modelDir + " does not exist or is not a directory");
        }
        Arena arena = Arena.ofShared();
        try {
            Path index = modelDir.resolve(INDEX_FILE);
            Map<String, SafetensorsFile> fileOf;
            String whereToLook;
            List<SafetensorsFile> files;
            if (Files.exists(index)) {
                files = new ArrayList<>();
                fileOf = openIndexed(modelDir, index, arena, files);
                whereToLook = "any shard listed by " + index;
            } else {
                SafetensorsFile single = SafetensorsFile.open(singleFile(modelDir), arena);
                files = List.of(single);
                fileOf = new TreeMap<>();
                for (String name : single.names()) {
                    fileOf.put(name, single);
                }
                whereToLook = single.path().toString();
            }
            int[] block = blockSize(modelDir.resolve("config.json"));
            long bytes = files.stream().mapToLong(SafetensorsFile::byteSize).sum();
            log.info("Opened checkpoint {}: {} tensors in {} file(s), {} MiB mapped", modelDir, fileOf.size(),
                    files.size(), bytes >> 20);
            return new Checkpoint(modelDir, arena, Collections.unmodifiableMap(fileOf), whereToLook,
                    block[0], block[1], java.util.Objects.requireNonNull(fp8, "fp8"));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Map<String, SafetensorsFile> openIndexed(Path dir, Path index, Arena arena,
                                                           List<SafetensorsFile> files) {
        JsonNode weightMap;
        try {
            weightMap = JSON.readTree(index.toFile()).get("weight_map");
        } catch (IOException e) {
            throw new ModelLoadException("cannot read checkpoint index " + index + ": " + e.getMessage(), e);
        }
        if (weightMap == null || !weightMap.isObject()) {
            throw new ModelLoadException("checkpoint index " + index + " has no weight_map object");
        }
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        Map<String, SafetensorsFile> fileOf = new TreeMap<>();
        for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
            String tensor = e.getKey();
            String shardName = e.getValue().asText();
            SafetensorsFile shard = shards.get(shardName);
            if (shard == null) {
                Path shardPath = dir.resolve(shardName);
                if (!Files.isRegularFile(shardPath)) {
                    throw new ModelLoadException("shard " + shardPath + " (holding tensor " + tensor
                            + ") listed by " + index + " does not exist");
                }
                shard = SafetensorsFile.open(shardPath, arena);
                shards.put(shardName, shard);
                files.add(shard);
            }
            if (!shard.has(tensor)) {
                throw new ModelLoadException("tensor " + tensor + " is listed by " + index + " in " + shard.path()
                        + " but that file does not hold it");
            }
            fileOf.put(tensor, shard);
        }
        return fileOf;
    }

    /** {@code model.safetensors}; its absence names the index too, and any other files that were left unread. */
    private static Path singleFile(Path dir) {
        Path single = dir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            return single;
        }
        List<String> others = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
            ds.forEach(p -> others.add(p.getFileName().toString()));
        } catch (IOException e) {
            throw new ModelLoadException("cannot list model directory " + dir + ": " + e, e);
        }
        Collections.sort(others);
        throw new ModelLoadException("no " + SINGLE_FILE + " or " + INDEX_FILE + " in " + dir + (others.isEmpty() ? ""
                : " (not read: " + String.join(", ", others) + "; a sharded checkpoint needs its index)"));
    }

    /** {@code quantization_config.weight_block_size} from config.json, or 128×128. */
    static int[] blockSize(Path config) {
        if (!Files.isRegularFile(config)) {
            return new int[] {DEFAULT_BLOCK, DEFAULT_BLOCK};
        }
        try {
            JsonNode bs = JSON.readTree(config.toFile()).path("quantization_config").path("weight_block_size");
            if (bs.isArray() && bs.size() == 2 && bs.get(0).asInt() > 0 && bs.get(1).asInt() > 0) {
                return new int[] {bs.get(0).asInt(), bs.get(1).asInt()};
            }
            return new int[] {DEFAULT_BLOCK, DEFAULT_BLOCK};
        } catch (IOException e) {
            throw new ModelLoadException("cannot read " + config + ": " + e.getMessage(), e);
        }
    }

    public Path dir() {
        return dir;
    }

    /** How FP8 weights are handed out. */
    public Fp8Loading fp8Loading() {
        return fp8;
    }

    /** Whether the checkpoint holds {@code name}; true for {@code _scale_inv} tensors as well. */
    public boolean has(String name) {
        return fileOf.containsKey(name);
    }

    /** Every tensor name, sorted, the {@code _scale_inv} tensors included. */
    public Set<String> names() {
        return fileOf.keySet();
    }

    /** Dtype, shape and file of {@code name} as stored (an FP8 tensor reports F8_E4M3, not the BF16 it loads as). */
    public TensorInfo info(String name) {
        return file(name).info(name);
    }

    @Override
    public synchronized void releaseResident() {
        if (!closed) {
            Set.copyOf(fileOf.values()).forEach(SafetensorsFile::releaseResident);
        }
    }

    /** The stored bytes of {@code name}, any dtype, as a read-only slice of the mapping. */
    public MemorySegment raw(String name) {
        return file(name).data(name);
    }

    /**
     * Tensor {@code name}, which must have shape {@code [rows, cols]}, as a matrix kernels can read: a slice of the
     * file for F32/BF16, a converted off-heap copy for F16 (to F32), and for F8_E4M3 the mapped bytes with their
     * block scales ({@link Fp8Loading#NATIVE}) or a BF16 copy ({@link Fp8Loading#DEQUANTIZE_BF16}).
     */
    public Matrix matrix(String name, int rows, int cols) {
        TensorInfo info = info(name);
        long[] shape = info.shape();
        if (shape.length != 2 || shape[0] != rows || shape[1] != cols) {
            throw new ModelLoadException("tensor " + name + " in " + info.file() + ": expected shape [" + rows + ", "
                    + cols + "], found " + Arrays.toString(shape));
        }
        return switch (info.dtype()) {
            case F32, BF16 -> new Matrix(name, info.dtype(), rows, cols, raw(name));
            case F16 -> converted.computeIfAbsent(name, n -> f16ToF32(info, rows, cols));
            case F8_E4M3 -> converted.computeIfAbsent(name, n -> fp8Matrix(info, rows, cols));
            // I8 and I4 are made at load (Quantization), never parsed from a header: DType.fromSafetensors cannot
            // return them.
            case I8, I4 -> throw new IllegalStateException(name + ": " + info.dtype() + " is not a checkpoint type");
        };
    }

    /**
     * Tensor {@code name}, which must hold {@code length} elements, copied to a float array; for norms, biases and
     * other small tensors. F8_E4M3 is refused: its block scales only make sense for matrices.
     */
    public float[] vector(String name, int length) {
        TensorInfo info = info(name);
        if (info.elementCount() != length) {
            throw new ModelLoadException("tensor " + name + " in " + info.file() + ": expected shape [" + length
                    + "], found " + Arrays.toString(info.shape()));
        }
        if (info.dtype() == DType.F8_E4M3) {
            throw new ModelLoadException("tensor " + name + " in " + info.file()
                    + " is F8_E4M3; only matrices with block scales can be loaded from FP8");
        }
        return toFloats(info, raw(name), length);
    }

    private static float[] toFloats(TensorInfo info, MemorySegment src, int length) {
        float[] out = new float[length];
        switch (info.dtype()) {
            case F32 -> MemorySegment.copy(src, F32, 0, out, 0, length);
            case BF16 -> {
                for (int i = 0; i < length; i++) {
                    out[i] = Bf16.toFloat(src.getAtIndex(I16, i));
                }
            }
            case F16 -> {
                for (int i = 0; i < length; i++) {
                    out[i] = Float.float16ToFloat(src.getAtIndex(I16, i));
                }
            }
            case F8_E4M3 -> {
                for (int i = 0; i < length; i++) {
                    out[i] = Fp8E4M3.toFloat(src.get(ValueLayout.JAVA_BYTE, i));
                }
            }
        }
        return out;
    }

    private Matrix f16ToF32(TensorInfo info, int rows, int cols) {
        MemorySegment src = raw(info.name());
        long n = (long) rows * cols;
        MemorySegment dst = arena.allocate(n * Float.BYTES, Float.BYTES);
        for (long i = 0; i < n; i++) {
            dst.setAtIndex(F32, i, Float.float16ToFloat(src.getAtIndex(I16, i)));
        }
        log.debug("Converted F16 tensor {} [{}, {}] to F32", info.name(), rows, cols);
        return new Matrix(info.name(), DType.F32, rows, cols, dst);
    }

    private Matrix fp8Matrix(TensorInfo info, int rows, int cols) {
        float[] scales = blockScales(info, rows, cols);
        if (fp8 == Fp8Loading.DEQUANTIZE_BF16) {
            return dequantizeFp8(info, rows, cols, scales);
        }
        if (blockRows != Matrix.FP8_BLOCK || blockCols != Matrix.FP8_BLOCK) {
            log.warn("FP8 tensor {} has {}x{} blocks; native FP8 needs {}x{}, so it is dequantized to BF16",
                    info.name(), blockRows, blockCols, Matrix.FP8_BLOCK, Matrix.FP8_BLOCK);
            return dequantizeFp8(info, rows, cols, scales);
        }
        for (int i = 0; i < scales.length; i++) {
            if (!Float.isFinite(scales[i])) {
                throw new ModelLoadException("tensor " + info.name() + SCALE_SUFFIX + " in "
                        + info(info.name() + SCALE_SUFFIX).file() + ": block scale ["
                        + i / ceilDiv(cols, blockCols) + ", " + i % ceilDiv(cols, blockCols) + "] is " + scales[i]
                        + ", not a finite number");
            }
        }
        if (!Fp8Matrix.foldable(scales)) {
            log.warn("FP8 tensor {} has a block scale of 2^8 or more, beyond native FP8's range; dequantized to BF16",
                    info.name());
            return dequantizeFp8(info, rows, cols, scales);
        }
        MemorySegment bytes = raw(info.name());
        long nan = Fp8Matrix.firstNaN(bytes);
        if (nan >= 0) {
            throw new ModelLoadException("tensor " + info.name() + " in " + info.file() + " holds the e4m3 NaN code 0x"
                    + Integer.toHexString(bytes.get(ValueLayout.JAVA_BYTE, nan) & 0xFF) + " at [" + nan / cols + ", "
                    + nan % cols + "]; FP8 checkpoints saturate to ±448 and never hold NaN (corrupt file?)");
        }
        return Fp8Matrix.of(info.name(), rows, cols, bytes, scales, arena);
    }

    /** The {@code _scale_inv} multipliers of FP8 tensor {@code info}, checked to exist and fit its shape. */
    private float[] blockScales(TensorInfo info, int rows, int cols) {
        String scaleName = info.name() + SCALE_SUFFIX;
        if (!has(scaleName)) {
            throw new ModelLoadException("tensor " + info.name() + " in " + info.file() + " is F8_E4M3 but "
                    + scaleName + " (its block scales) is not in " + whereToLook);
        }
        TensorInfo scaleInfo = info(scaleName);
        int scaleRows = ceilDiv(rows, blockRows);
        int scaleCols = ceilDiv(cols, blockCols);
        long[] ss = scaleInfo.shape();
        if (ss.length != 2 || ss[0] != scaleRows || ss[1] != scaleCols) {
            throw new ModelLoadException("tensor " + scaleName + " in " + scaleInfo.file() + ": expected shape ["
                    + scaleRows + ", " + scaleCols + "] (" + blockRows + "x" + blockCols + " blocks of " + info.name()
                    + " [" + rows + ", " + cols + "]), found " + Arrays.toString(ss));
        }
        if (scaleInfo.dtype() == DType.F8_E4M3) {
            throw new ModelLoadException("tensor " + scaleName + " in " + scaleInfo.file()
                    + " is F8_E4M3; block scales must be F32, BF16 or F16");
        }
        return toFloats(scaleInfo, raw(scaleName), scaleRows * scaleCols);
    }

    private Matrix dequantizeFp8(TensorInfo info, int rows, int cols, float[] scales) {
        int scaleCols = ceilDiv(cols, blockCols);
        MemorySegment src = raw(info.name());
        MemorySegment dst = arena.allocate((long) rows * cols * Short.BYTES, Short.BYTES);
        for (int r = 0; r < rows; r++) {
            long rowBase = (long) r * cols;
            int scaleBase = (r / blockRows) * scaleCols;
            for (int c0 = 0; c0 < cols; c0 += blockCols) {
                float scale = scales[scaleBase + c0 / blockCols];
                int end = Math.min(cols, c0 + blockCols);
                for (int c = c0; c < end; c++) {
                    float w = Fp8E4M3.toFloat(src.get(ValueLayout.JAVA_BYTE, rowBase + c));
                    dst.setAtIndex(I16, rowBase + c, Bf16.fromFloat(w * scale));
                }
            }
        }
        log.debug("Dequantized FP8 tensor {} [{}, {}] to BF16", info.name(), rows, cols);
        return new Matrix(info.name(), DType.BF16, rows, cols, dst);
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /** The file holding {@code name}, whatever its dtype; for copying tensors verbatim. */
    SafetensorsFile file(String name) {
        if (closed) {
            throw new IllegalStateException("checkpoint " + dir + " is closed");
        }
        SafetensorsFile f = fileOf.get(name);
        if (f == null) {
            throw new ModelLoadException("tensor " + name + " not found in " + whereToLook);
        }
        return f;
    }

    /** Unmaps every file and frees every conversion; matrices handed out before must not be read afterwards. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "Checkpoint[" + dir + ", " + fileOf.size() + " tensors]";
    }
}
