package io.expertmesh.core.safetensors;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * SHA-256 of weight files' contents, remembered across starts. Reading a DeepSeek-V3 checkpoint (about 700 GB)
 * takes minutes, so the digest of a file of at least {@code minCachedBytes} is kept in a small sidecar file under
 * {@code cacheDir}, named by the hash of the file's real path and valid while the file's size and modification
 * time are unchanged (what {@code make} trusts too). Smaller files are read every time: cheaper than a cache
 * entry per test model.
 *
 * <p>The path only finds the sidecar; it is never part of a digest. A cache directory that cannot be written
 * (a read-only file system) costs the re-read at the next start, nothing else.
 */
public final class WeightDigests {
    private static final Logger LOG = LoggerFactory.getLogger(WeightDigests.class);
    /** Files of 256 MiB and more are worth a sidecar (about a tenth of a second of SHA-256 and more). */
    public static final long DEFAULT_MIN_CACHED_BYTES = 256L << 20;

    private final Path cacheDir;
    private final long minCachedBytes;

    /** How recently modified a file may be and still have its digest cached (see {@link #digest}). */
    static final long RACY_MILLIS = 2_000;

    /**
     * @param cacheDir       where the sidecars live (created on first use); null: never cached
     * @param minCachedBytes files at least this large are cached
     */
    public WeightDigests(Path cacheDir, long minCachedBytes) {
        this.cacheDir = cacheDir;
        this.minCachedBytes = minCachedBytes;
    }

    /** Sidecars under {@code cacheRoot/weight-digests}, for files of {@link #DEFAULT_MIN_CACHED_BYTES} or more. */
    public static WeightDigests under(Path cacheRoot) {
        return new WeightDigests(cacheRoot.resolve("weight-digests"), DEFAULT_MIN_CACHED_BYTES);
    }

    /** The SHA-256 of {@code file}'s contents, as 64 hex digits. */
    public String digest(Path file) throws IOException {
        BasicFileAttributes attrs = Files.readAttributes(file, BasicFileAttributes.class);
        long mtime = attrs.lastModifiedTime().toMillis();
        String stamp = attrs.size() + " " + mtime;
        // A file modified within the last RACY_MILLIS can be modified again with the same size and the same
        // modification time (file times come from a coarse clock, a few milliseconds a tick): its digest is
        // neither cached nor read from a sidecar, as git treats "racily clean" files.
        boolean racy = System.currentTimeMillis() - mtime < RACY_MILLIS;
        Path sidecar = cacheDir == null || attrs.size() < minCachedBytes || racy ? null : sidecar(file);
        if (sidecar != null) {
            String cached = readSidecar(sidecar, stamp);
            if (cached != null) {
                return cached;
            }
            LOG.info("Computing the SHA-256 of {} ({} MiB; once per file version, cached in {})", file,
                    attrs.size() >> 20, cacheDir);
        }
        String digest = sha256(file);
        if (sidecar != null) {
            writeSidecar(sidecar, stamp + " " + digest);
        }
        return digest;
    }

    private Path sidecar(Path file) throws IOException {
        return cacheDir.resolve(hex(sha256Of(file.toRealPath().toString().getBytes(StandardCharsets.UTF_8)))
                + ".txt");
    }

    private static String readSidecar(Path sidecar, String stamp) {
        try {
            String line = Files.readString(sidecar, StandardCharsets.UTF_8).strip();
            // "size mtimeMillis digest": stale when the file changed since.
            int last = line.lastIndexOf(' ');
            if (last > 0 && line.substring(0, last).equals(stamp) && line.length() - last - 1 == 64) {
                return line.substring(last + 1);
            }
        } catch (IOException | RuntimeException absent) {
            // no sidecar, or an unreadable one: compute
        }
        return null;
    }

    private static void writeSidecar(Path sidecar, String line) {
        try {
            Files.createDirectories(sidecar.getParent());
            Path tmp = Files.createTempFile(sidecar.getParent(), "digest", ".tmp");
            Files.writeString(tmp, line + "\n", StandardCharsets.UTF_8);
            try {
                Files.move(tmp, sidecar, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, sidecar, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            LOG.debug("Cannot cache a weight digest in {}: {}", sidecar, e.toString());
        }
    }

    private static String sha256(Path file) throws IOException {
        MessageDigest md = newSha256();
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buf) >= 0) {
                buf.flip();
                md.update(buf);
                buf.clear();
            }
        }
        return hex(md.digest());
    }

    private static byte[] sha256Of(byte[] bytes) {
        return newSha256().digest(bytes);
    }

    private static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JVM", e);
        }
    }

    private static String hex(byte[] b) {
        return HexFormat.of().formatHex(b);
    }
}
