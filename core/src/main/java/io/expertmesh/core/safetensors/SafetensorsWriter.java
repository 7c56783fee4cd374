package io.expertmesh.core.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.tensor.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Collects named tensors and writes them as one safetensors file, or as Hugging Face shards with an index.
 *
 * <p>Output matches the Python library's: the JSON header is padded with spaces to a multiple of 8 bytes (so data
 * starts aligned), {@code __metadata__} comes first and tensors follow sorted by name, packed without gaps. Data is
 * streamed through a small direct buffer, never assembled in memory, so a source may be a multi-GB mapped segment;
 * the writer only keeps references to what it was given until {@link #write} runs.
 *
 * <p>Used by tests, by the generator of the built-in default model and by the benchmark model generator.
 */
public final class SafetensorsWriter {
    private static final Logger log = LoggerFactory.getLogger(SafetensorsWriter.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int CHUNK = 4 << 20;
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Where a tensor's little-endian bytes come from. */
    private sealed interface Source {
        long byteSize();

        /** Copies {@code bytes} bytes starting at byte {@code from} into {@code dst} at 0; chunks are 8-aligned. */
        void copy(long from, MemorySegment dst, long bytes);
    }

    private record FloatSource(float[] a) implements Source {
        public long byteSize() {
            return (long) a.length * Float.BYTES;
        }

        public void copy(long from, MemorySegment dst, long bytes) {
            MemorySegment.copy(a, (int) (from / Float.BYTES), dst, F32_LE, 0, (int) (bytes / Float.BYTES));
        }
    }

    private record ShortSource(short[] a) implements Source {
        public long byteSize() {
            return (long) a.length * Short.BYTES;
        }

        public void copy(long from, MemorySegment dst, long bytes) {
            MemorySegment.copy(a, (int) (from / Short.BYTES), dst, I16_LE, 0, (int) (bytes / Short.BYTES));
        }
    }

    private record SegmentSource(MemorySegment s) implements Source {
        public long byteSize() {
            return s.byteSize();
        }

        public void copy(long from, MemorySegment dst, long bytes) {
            MemorySegment.copy(s, from, dst, 0, bytes);
        }
    }

    private record Pending(String name, String dtype, long[] shape, Source source) {
    }

    private final Map<String, Pending> tensors = new TreeMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** Adds a {@code __metadata__} entry (written to every shard). */
    public SafetensorsWriter putMetadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Adds an F32 tensor. */
    public SafetensorsWriter addF32(String name, float[] data, long... shape) {
        return add(name, DType.F32.safetensorsName(), shape, new FloatSource(data));
    }

    /** Adds a BF16 tensor given as raw bfloat16 bit patterns (see {@link io.expertmesh.core.tensor.Bf16}). */
    public SafetensorsWriter addBf16(String name, short[] bits, long... shape) {
        return add(name, DType.BF16.safetensorsName(), shape, new ShortSource(bits));
    }

    /** Adds an F16 tensor given as raw half-float bit patterns ({@link Float#floatToFloat16}). */
    public SafetensorsWriter addF16(String name, short[] bits, long... shape) {
        return add(name, DType.F16.safetensorsName(), shape, new ShortSource(bits));
    }

    /** Adds a tensor of any safetensors dtype from little-endian bytes. */
    public SafetensorsWriter add(String name, String dtype, byte[] data, long... shape) {
        return add(name, dtype, shape, new SegmentSource(MemorySegment.ofArray(data)));
    }

    /** Adds a tensor of any safetensors dtype from little-endian bytes in a segment (e.g. a mapped file slice). */
    public SafetensorsWriter add(String name, String dtype, MemorySegment data, long... shape) {
        return add(name, dtype, shape, new SegmentSource(data));
    }

    /** Adds a tensor of a loadable dtype from little-endian bytes in a segment. */
    public SafetensorsWriter add(String name, DType dtype, MemorySegment data, long... shape) {
        return add(name, dtype.safetensorsName(), data, shape);
    }

    private SafetensorsWriter add(String name, String dtype, long[] shape, Source source) {
        if (name.isEmpty() || name.equals(SafetensorsFile.METADATA_KEY)) {
            throw new IllegalArgumentException("bad tensor name '" + name + "'");
        }
        if (tensors.containsKey(name)) {
            throw new IllegalArgumentException("tensor " + name + " added twice");
        }
        int width = SafetensorsDTypes.width(dtype);
        if (width < 0) {
            throw new IllegalArgumentException("tensor " + name + ": unknown safetensors dtype " + dtype);
        }
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor " + name + ": negative dimension in " + Arrays.toString(shape));
            }
        }
        long expected = TensorInfo.elementCount(shape) * width;
        if (source.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " of " + dtype
                    + " needs " + expected + " bytes, given " + source.byteSize());
        }
        tensors.put(name, new Pending(name, dtype, shape.clone(), source));
        return this;
    }

    /** Names added so far, sorted. */
    public Set<String> names() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    /** Total tensor bytes added so far. */
    public long byteSize() {
        return tensors.values().stream().mapToLong(p -> p.source().byteSize()).sum();
    }

    /** Writes every tensor to {@code file}, replacing it. */
    public void write(Path file) {
        writeFile(file, new ArrayList<>(tensors.values()));
        log.info("Wrote {} tensors ({} MiB) to {}", tensors.size(), byteSize() >> 20, file);
    }

    /**
     * Writes {@code model-0000i-of-0000n.safetensors} shards and {@code model.safetensors.index.json} into
     * {@code dir}: tensors in name order, cut into {@code shards} runs of roughly equal bytes, none empty.
     */
    public void writeSharded(Path dir, int shards) {
        if (shards < 1 || shards > tensors.size()) {
            throw new IllegalArgumentException("cannot cut " + tensors.size() + " tensors into " + shards + " shards");
        }
        List<List<Pending>> parts = new ArrayList<>();
        for (int i = 0; i < shards; i++) {
            parts.add(new ArrayList<>());
        }
        long total = byteSize();
        long acc = 0;
        int shard = 0;
        int i = 0;
        for (Pending p : tensors.values()) {
            boolean full = total > 0 && acc * shards >= total * (shard + 1);
            boolean mustAdvance = tensors.size() - i <= shards - shard - 1;
            if (!parts.get(shard).isEmpty() && (full || mustAdvance) && shard < shards - 1) {
                shard++;
            }
            parts.get(shard).add(p);
            acc += p.source().byteSize();
            i++;
        }
        Map<String, String> weightMap = new TreeMap<>();
        try {
            Files.createDirectories(dir);
            for (int s = 0; s < shards; s++) {
                String fileName = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
                writeFile(dir.resolve(fileName), parts.get(s));
                for (Pending p : parts.get(s)) {
                    weightMap.put(p.name(), fileName);
                }
            }
            ObjectNode index = JSON.createObjectNode();
            index.putObject("metadata").put("total_size", total);
            ObjectNode wm = index.putObject("weight_map");
            weightMap.forEach(wm::put);
            JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve(Checkpoint.INDEX_FILE).toFile(), index);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write shards to " + dir, e);
        }
        log.info("Wrote {} tensors ({} MiB) to {} shards in {}", tensors.size(), total >> 20, shards, dir);
    }

    private void writeFile(Path file, List<Pending> part) {
        byte[] header = header(part);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            writeFully(ch, len);
            writeFully(ch, ByteBuffer.wrap(header));
            ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
            MemorySegment bufSeg = MemorySegment.ofBuffer(buf);
            for (Pending p : part) {
                long size = p.source().byteSize();
                for (long from = 0; from < size; from += CHUNK) {
                    int n = (int) Math.min(CHUNK, size - from);
                    p.source().copy(from, bufSeg, n);
                    writeFully(ch, buf.clear().limit(n));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write safetensors file " + file, e);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private byte[] header(List<Pending> part) {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(SafetensorsFile.METADATA_KEY);
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Pending p : part) {
            ObjectNode t = root.putObject(p.name());
            t.put("dtype", p.dtype());
            var shape = t.putArray("shape");
            for (long d : p.shape()) {
                shape.add(d);
            }
            long end = offset + p.source().byteSize();
            t.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int padded = (json.length + 7) & ~7;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    @Override
    public String toString() {
        return "SafetensorsWriter[" + tensors.size() + " tensors]";
    }
}
