package io.expertmesh.core.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.tensor.DType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * One {@code .safetensors} file, memory-mapped read-only: tensors are slices of the mapping, never heap copies.
 *
 * <p>Layout: an 8-byte little-endian header length {@code n}, {@code n} bytes of JSON mapping each tensor name to
 * {@code {dtype, shape, data_offsets: [begin, end]}} (offsets relative to the byte after the header) plus an optional
 * {@code __metadata__} string map, then the data. Everything is validated before the first tensor is handed out,
 * so a truncated download or a hand-edited header fails at open with the tensor and file named, not later as a
 * segment fault or garbage logits. Offsets are {@code long} throughout: single expert stacks exceed 2 GB.
 *
 * <p>The mapping lives in an {@link Arena}: either one this file owns (closed by {@link #close()}) or one the caller
 * passes and closes, as {@link Checkpoint} does for all its shards.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The Python library refuses larger headers; so do we, before allocating a buffer for one. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;
    static final String METADATA_KEY = "__metadata__";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One header entry; {@code begin}/{@code end} are absolute file offsets. */
    private record Entry(String name, String dtype, long[] shape, long begin, long end) {
    }

    private final Path path;
    private final Arena arena;
    private final boolean ownsArena;
    private final MemorySegment mapping;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, boolean ownsArena, MemorySegment mapping,
                            Map<String, Entry> entries, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.ownsArena = ownsArena;
        this.mapping = mapping;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Opens and maps {@code file} in an arena of its own, freed by {@link #close()}. */
    public static SafetensorsFile open(Path file) {
        Arena arena = Arena.ofShared();
        try {
            return open(file, arena, true);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Opens and maps {@code file} into {@code arena}, which the caller closes; {@link #close()} then does nothing. */
    public static SafetensorsFile open(Path file, Arena arena) {
        return open(file, arena, false);
    }

    private static SafetensorsFile open(Path file, Arena arena, boolean ownsArena) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new ModelLoadException("safetensors file " + file + " has " + size
                        + " bytes, too few for the 8-byte header length");
            }
            long headerLength = readLong(ch, file);
            if (headerLength < 2 || headerLength > size - 8 || headerLength > MAX_HEADER_BYTES) {
                throw new ModelLoadException("safetensors file " + file + " declares a header of " + headerLength
                        + " bytes but the file has " + size + " bytes (truncated or not a safetensors file?)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLength);
            while (header.hasRemaining()) {
                if (ch.read(header, 8 + header.position()) < 0) {
                    throw new ModelLoadException("safetensors file " + file + ": unexpected end of header");
                }
            }
            long dataStart = 8 + headerLength;
            JsonNode root;
            try {
                root = JSON.readTree(header.array());
            } catch (IOException e) {
                throw new ModelLoadException("safetensors file " + file + ": header is not valid JSON: "
                        + e.getMessage(), e);
            }
            if (root == null || !root.isObject()) {
                throw new ModelLoadException("safetensors file " + file + ": header is not a JSON object");
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, Entry> entries = new TreeMap<>();
            for (Map.Entry<String, JsonNode> field : root.properties()) {
                if (field.getKey().equals(METADATA_KEY)) {
                    readMetadata(field.getValue(), file, metadata);
                } else {
                    Entry e = parseEntry(field.getKey(), field.getValue(), file, dataStart, size);
                    entries.put(e.name(), e);
                }
            }
            MemorySegment mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return new SafetensorsFile(file, arena, ownsArena, mapping, Collections.unmodifiableMap(entries),
                    Collections.unmodifiableMap(metadata));
        } catch (IOException e) {
            throw new ModelLoadException("cannot read safetensors file " + file + ": " + e, e);
        }
    }

    private static long readLong(FileChannel ch, Path file) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            if (ch.read(b, b.position()) < 0) {
                throw new ModelLoadException("safetensors file " + file + ": unexpected end of file");
            }
        }
        return b.getLong(0);
    }

    private static void readMetadata(JsonNode node, Path file, Map<String, String> out) {
        if (!node.isObject()) {
            throw new ModelLoadException("safetensors file " + file + ": __metadata__ is not a JSON object");
        }
        for (Map.Entry<String, JsonNode> f : node.properties()) {
            out.put(f.getKey(), f.getValue().isTextual() ? f.getValue().textValue() : f.getValue().toString());
        }
    }

    private static Entry parseEntry(String name, JsonNode node, Path file, long dataStart, long fileSize) {
        String where = "tensor " + name + " in " + file;
        if (!node.isObject()) {
            throw new ModelLoadException(where + ": header entry is not a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new ModelLoadException(where + ": header entry has no dtype");
        }
        String dtype = dtypeNode.textValue();
        int width = SafetensorsDTypes.width(dtype);
        if (width < 0) {
            throw new ModelLoadException(where + ": unknown dtype " + dtype);
        }
        long[] shape = longs(node.get("shape"), -1, where, "shape");
        long[] offsets = longs(node.get("data_offsets"), 2, where, "data_offsets");
        if (offsets[0] > offsets[1]) {
            throw new ModelLoadException(where + ": data_offsets " + Arrays.toString(offsets) + " end before they begin");
        }
        long available = fileSize - dataStart;
        if (offsets[1] > available) {
            throw new ModelLoadException(where + ": data_offsets " + Arrays.toString(offsets)
                    + " reach beyond the file's " + available + " data bytes (file truncated?)");
        }
        long expected;
        try {
            expected = Math.multiplyExact(TensorInfo.elementCount(shape), width);
        } catch (ArithmeticException e) {
            throw new ModelLoadException(where + ": shape " + Arrays.toString(shape) + " overflows a long");
        }
        if (offsets[1] - offsets[0] != expected) {
            throw new ModelLoadException(where + ": data_offsets " + Arrays.toString(offsets) + " span "
                    + (offsets[1] - offsets[0]) + " bytes but shape " + Arrays.toString(shape) + " of " + dtype
                    + " needs " + expected);
        }
        return new Entry(name, dtype, shape, dataStart + offsets[0], dataStart + offsets[1]);
    }

    private static long[] longs(JsonNode node, int length, String where, String field) {
        if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
            throw new ModelLoadException(where + ": " + field + " is missing or malformed: " + node);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new ModelLoadException(where + ": " + field + " holds " + v + ", not a non-negative integer");
            }
            out[i] = v.longValue();
        }
        return out;
    }

    public Path path() {
        return path;
    }

    /** Tensor names in sorted order. */
    public Set<String> names() {
        return entries.keySet();
    }

    public boolean has(String name) {
        return entries.containsKey(name);
    }

    /** The {@code __metadata__} map of the header; empty when there is none. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The safetensors dtype name of a tensor, including types ExpertMesh cannot load (e.g. {@code I64}). */
    public String dtypeName(String name) {
        return entry(name).dtype();
    }

    /** Shape of a tensor, whatever its dtype. */
    public long[] shape(String name) {
        return entry(name).shape().clone();
    }

    /** The tensor's description; fails for dtypes outside {@link DType}, which nothing downstream can read. */
    public TensorInfo info(String name) {
        Entry e = entry(name);
        DType dtype = DType.fromSafetensors(e.dtype());
        if (dtype == null) {
            throw new ModelLoadException("tensor " + name + " in " + path + " has dtype " + e.dtype()
                    + ", which ExpertMesh does not load (supported: F32, BF16, F16, F8_E4M3)");
        }
        return new TensorInfo(name, dtype, e.shape(), path);
    }

    /** The tensor's bytes as a read-only slice of the mapping, for any dtype. */
    public MemorySegment data(String name) {
        Entry e = entry(name);
        return mapping.asSlice(e.begin(), e.end() - e.begin());
    }

    /** Drops this process's resident pages of the mapping (a later read maps them again from the page cache). */
    public void releaseResident() {
        mapping.unload();
    }

    /** Size of the mapped file in bytes. */
    public long byteSize() {
        return mapping.byteSize();
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new ModelLoadException("tensor " + name + " not found in " + path);
        }
        return e;
    }

    /** Unmaps the file when this object owns its arena; afterwards no slice of it may be read. */
    @Override
    public void close() {
        if (ownsArena && arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + entries.size() + " tensors]";
    }
}
