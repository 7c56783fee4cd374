package io.expertmesh.core.model;

import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.core.tensor.Quantization;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The int8/int4 weights a load makes ({@code --quantize}), kept in one file so that the next start maps them
 * instead of quantizing again: a second start is then as fast as a BF16 start, and the weights are page cache,
 * not heap. One file per model identity and format, {@code <identity>-<int8|int4>.emq}.
 *
 * <p><b>Trust.</b> A file is used only when its magic, version, model identity and format match, every entry
 * lies inside the file, and its CRC32C (over everything before the last 8 bytes, checked once at load) is right.
 * Entries are served in the order the loader asks for them, each checked against the matrix it replaces (name,
 * shape, format). Anything else (a truncated or corrupt file, another model's, a loader that now quantizes other
 * matrices) is logged as a warning and the weights are quantized from the checkpoint and the file rewritten:
 * a bad cache costs one slow start, never a wrong weight.
 *
 * <p><b>Layout</b> (little-endian): {@code "EMQW"}, version, identity, format, entry count; per entry name, dtype,
 * rows, cols and the offset and length of its values and of its scales (each 64-byte aligned); the data; the
 * CRC32C. Written to a temporary file and renamed, so a crash mid-write leaves no half file under the name.
 */
public final class QuantizedWeightCache {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizedWeightCache.class);
    private static final int MAGIC = 0x57514D45;
    /**
     * 2: int4 rows interleaved in fours (Int4Quantizer); 3: int8 rows too (Int8Quantizer). A file of another
     * version is rebuilt.
     */
    private static final int VERSION = 3;
    private static final int ALIGN = 64;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path file;
    private final String identity;
    private final Quantization quantization;
    /** One of many small files (a worker's per-expert caches): routine lines at debug, not info. */
    private final boolean quiet;
    private List<Matrix> stored = List.of();
    /** Every matrix this load quantized or took from the file, in order: what a rewrite writes. */
    private final List<Matrix> made = new ArrayList<>();
    private int next;
    private boolean mismatch;
    private int hits;

    private QuantizedWeightCache(Path file, String identity, Quantization quantization, boolean quiet) {
        this.file = file;
        this.identity = identity;
        this.quantization = quantization;
        this.quiet = quiet;
    }

    /** The cache of the model with {@code identity} under {@code dir}, for {@code quantization} (int8 or int4). */
    public static QuantizedWeightCache in(Path dir, String identity, Quantization quantization) {
        return create(dir.resolve(identity + "-" + quantization.label() + ".emq"), identity, quantization, false);
    }

    /** A cache in {@code file} (an expert worker keeps one per expert), for the model with {@code identity}. */
    public static QuantizedWeightCache at(Path file, String identity, Quantization quantization) {
        return create(file, identity, quantization, true);
    }

    private static QuantizedWeightCache create(Path file, String identity, Quantization quantization, boolean quiet) {
        Objects.requireNonNull(identity, "identity");
        if (quantization == Quantization.NONE) {
            throw new IllegalArgumentException("nothing to cache without --quantize");
        }
        return new QuantizedWeightCache(file, identity, quantization, quiet);
    }

    private void info(String format, Object... args) {
        if (quiet) {
            LOG.debug(format, args);
        } else {
            LOG.info(format, args);
        }
    }

    /**
     * Whether loads keep quantized weights on disk: yes unless {@code -Dexpertmesh.quantizedCache=false}.
     */
    public static boolean enabled() {
        return Boolean.parseBoolean(System.getProperty("expertmesh.quantizedCache", "true"));
    }

    /**
     * Where they are kept: {@code -Dexpertmesh.quantizedCacheDir=DIR}, else {@code $EXPERTMESH_CACHE/quantized}
     * (the build's tests set the property to a folder under {@code target}, so they neither fill the user's cache
     * nor read weights an earlier build quantized).
     */
    public static Path defaultDir() {
        String dir = System.getProperty("expertmesh.quantizedCacheDir", "");
        return dir.isBlank() ? SyntheticModels.defaultCacheRoot().resolve("quantized") : Path.of(dir);
    }

    /** The file this cache reads and writes. */
    public Path file() {
        return file;
    }

    /** Matrices served from the file by this load. */
    public int hits() {
        return hits;
    }

    /** Maps the file into {@code arena} if it is there and valid (see the class comment); else starts empty. */
    void load(Arena arena) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            stored = parse(seg);
            info("Quantized weights ({}) mapped from {}: {} matrices", quantization.label(), file, stored.size());
        } catch (NoSuchFileException e) {
            info("No quantized weights cached at {} yet: quantizing, then writing them there", file);
        } catch (IOException | RuntimeException e) {
            LOG.warn("Ignoring the quantized weight cache {} ({}); quantizing from the checkpoint and rewriting it",
                    file, e.getMessage());
            mismatch = true;
        }
    }

    /**
     * {@code m} stored as {@code format} (int8, or int4; the LM head of an int4 model is int8): the next matrix of
     * the file when it is this one, else quantized now.
     */
    Matrix apply(Matrix m, Quantization format, Arena arena) {
        if (!format.changes(m)) {
            return m;
        }
        Matrix out = null;
        if (!mismatch && next < stored.size()) {
            Matrix s = stored.get(next);
            if (s.name().equals(m.name()) && s.rows() == m.rows() && s.cols() == m.cols()
                    && s.dtype() == format.dtype()) {
                out = s;
                next++;
                hits++;
            } else {
                LOG.warn("Quantized weight cache {} holds {} where the model has {}: quantizing from the checkpoint "
                        + "and rewriting it", file, s.name(), m.name());
                mismatch = true;
            }
        }
        if (out == null) {
            out = format.apply(m, arena);
        }
        made.add(out);
        return out;
    }

    /** After the model is built: rewrites the file unless every matrix came from it. */
    void finish() {
        if (!mismatch && next == stored.size() && stored.size() == made.size() && !stored.isEmpty()) {
            return;
        }
        if (made.isEmpty()) {
            return;
        }
        try {
            write();
            info("Wrote {} quantized matrices ({}) to {}", made.size(), quantization.label(), file);
        } catch (IOException | RuntimeException e) {
            // The cache is an optimisation: a read-only or full disk costs the next start its speed, nothing more.
            LOG.warn("Could not write the quantized weight cache {}: {}", file, e.getMessage());
        }
    }

    private List<Matrix> parse(MemorySegment seg) throws IOException {
        long size = seg.byteSize();
        if (size < 24) {
            throw new IOException("truncated: " + size + " bytes");
        }
        CRC32C crc = new CRC32C();
        for (long off = 0; off < size - 8; off += 1L << 30) {
            crc.update(seg.asSlice(off, Math.min(1L << 30, size - 8 - off)).asByteBuffer());
        }
        if (crc.getValue() != seg.get(LONG, size - 8)) {
            throw new IOException("checksum mismatch (corrupt or truncated)");
        }
        Reader r = new Reader(seg, size - 8);
        if (r.i32() != MAGIC || r.i32() != VERSION) {
            throw new IOException("not a version " + VERSION + " quantized weight file");
        }
        String id = r.string();
        String format = r.string();
        if (!id.equals(identity) || !format.equals(quantization.label())) {
            throw new IOException("made for model " + id + " as " + format + ", not " + identity + " as "
                    + quantization.label());
        }
        int count = r.i32();
        if (count < 0) {
            throw new IOException("bad entry count " + count);
        }
        List<Matrix> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String name = r.string();
            DType dtype = DType.valueOf(r.string());
            int rows = r.i32();
            int cols = r.i32();
            MemorySegment data = r.region();
            MemorySegment scales = r.region();
            // The Matrix constructor checks that the regions' sizes fit the shape and dtype.
            out.add(new Matrix(name, dtype, rows, cols, data, scales));
        }
        return List.copyOf(out);
    }

    private void write() throws IOException {
        Files.createDirectories(file.getParent());
        byte[] idBytes = identity.getBytes(StandardCharsets.UTF_8);
        byte[] formatBytes = quantization.label().getBytes(StandardCharsets.UTF_8);
        long headerBytes = 4 + 4 + 4 + idBytes.length + 4 + formatBytes.length + 4;
        for (Matrix m : made) {
            headerBytes += 4 + m.name().getBytes(StandardCharsets.UTF_8).length
                    + 4 + m.dtype().name().length() + 4 + 4 + 4 * 8;
        }
        ByteBuffer header = ByteBuffer.allocate(Math.toIntExact(headerBytes)).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(MAGIC).putInt(VERSION);
        putString(header, idBytes);
        putString(header, formatBytes);
        header.putInt(made.size());
        long offset = align(headerBytes);
        for (Matrix m : made) {
            putString(header, m.name().getBytes(StandardCharsets.UTF_8));
            putString(header, m.dtype().name().getBytes(StandardCharsets.UTF_8));
            header.putInt(m.rows()).putInt(m.cols());
            header.putLong(offset).putLong(m.data().byteSize());
            offset = align(offset + m.data().byteSize());
            header.putLong(offset).putLong(m.scales().byteSize());
            offset = align(offset + m.scales().byteSize());
        }
        header.flip();
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        CRC32C crc = new CRC32C();
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            long pos = put(ch, crc, header, 0);
            for (Matrix m : made) {
                pos = put(ch, crc, ByteBuffer.allocate((int) (align(pos) - pos)), pos);
                pos = putSegment(ch, crc, m.data(), pos);
                pos = put(ch, crc, ByteBuffer.allocate((int) (align(pos) - pos)), pos);
                pos = putSegment(ch, crc, m.scales(), pos);
            }
            pos = put(ch, crc, ByteBuffer.allocate((int) (align(pos) - pos)), pos);
            ByteBuffer sum = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(crc.getValue()).flip();
            while (sum.hasRemaining()) {
                pos += ch.write(sum, pos);
            }
            ch.force(true);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static long putSegment(FileChannel ch, CRC32C crc, MemorySegment seg, long pos) throws IOException {
        for (long off = 0; off < seg.byteSize(); off += 1L << 30) {
            pos = put(ch, crc, seg.asSlice(off, Math.min(1L << 30, seg.byteSize() - off)).asByteBuffer(), pos);
        }
        return pos;
    }

    private static long put(FileChannel ch, CRC32C crc, ByteBuffer b, long pos) throws IOException {
        crc.update(b.duplicate());
        while (b.hasRemaining()) {
            pos += ch.write(b, pos);
        }
        return pos;
    }

    private static void putString(ByteBuffer b, byte[] s) {
        b.putInt(s.length).put(s);
    }

    private static long align(long n) {
        return (n + ALIGN - 1) / ALIGN * ALIGN;
    }

    /** Reads the header, every read checked against the end of the data. */
    private static final class Reader {
        private final MemorySegment seg;
        private final long end;
        private long pos;

        Reader(MemorySegment seg, long end) {
            this.seg = seg;
            this.end = end;
        }

        private void need(long n) throws IOException {
            if (n < 0 || pos + n > end) {
                throw new IOException("header runs past the end of the file");
            }
        }

        int i32() throws IOException {
            need(4);
            int v = seg.get(INT, pos);
            pos += 4;
            return v;
        }

        long i64() throws IOException {
            need(8);
            long v = seg.get(LONG, pos);
            pos += 8;
            return v;
        }

        String string() throws IOException {
            int n = i32();
            if (n > 4096) {
                throw new IOException("bad string length " + n);
            }
            need(n);
            byte[] b = seg.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
            pos += n;
            return new String(b, StandardCharsets.UTF_8);
        }

        MemorySegment region() throws IOException {
            long off = i64();
            long len = i64();
            if (off < 0 || len < 0 || off % ALIGN != 0 || off > end || len > end - off) {
                throw new IOException("an entry lies outside the file");
            }
            return seg.asSlice(off, len);
        }
    }
}
