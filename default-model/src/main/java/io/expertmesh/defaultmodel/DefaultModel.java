package io.expertmesh.defaultmodel;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The built-in default model: a DeepSeek-V3-architecture MoE of 18 M parameters trained by {@code tools/train} on
 * freely licensed English text, shipped as resources of this module and unpacked, on first use, into a cache
 * directory, so every command (and the checkpoint loader) treats it as any Hugging Face model directory.
 *
 * <p>The resource {@code MANIFEST} lists each file with its SHA-256 and size. The directory is named after a hash of
 * the manifest, so a retrained model never reuses a stale cache, and every file is checked as it is unpacked.
 */
public final class DefaultModel {
    private static final Logger LOG = LoggerFactory.getLogger(DefaultModel.class);
    private static final String ROOT = "/io/expertmesh/defaultmodel/";

    private DefaultModel() {
    }

    /** One unpacked file: its name, SHA-256 (hex) and size. */
    record Entry(String name, String sha256, long size) {
    }

    /** The manifest's entries. */
    static List<Entry> manifest() {
        List<Entry> entries = new ArrayList<>();
        for (String line : resourceText("MANIFEST").split("\n")) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] f = line.strip().split("\\s+");
            if (f.length != 3) {
                throw new IllegalStateException("bad MANIFEST line: " + line);
            }
            entries.add(new Entry(f[2], f[0], Long.parseLong(f[1])));
        }
        return entries;
    }

    /** The name of the unpacked directory: changes whenever any file does. */
    public static String name() {
        return "expertmesh-default-" + HexFormat.of().formatHex(sha256(resourceText("MANIFEST")
                .getBytes(StandardCharsets.UTF_8)), 0, 6);
    }

    /**
     * The default model's directory under {@code cacheRoot}/models, unpacking it there on first use (about 40 MB, a
     * second). Unpacking goes to a temporary directory that is renamed when complete, so an interrupted or
     * concurrent first use never leaves half a model behind.
     */
    public static Path ensure(Path cacheRoot) {
        Path dir = cacheRoot.resolve("models").resolve(name());
        if (Files.isRegularFile(dir.resolve("model.safetensors"))) {
            return dir;
        }
        try {
            Files.createDirectories(dir.getParent());
            Path tmp = Files.createTempDirectory(dir.getParent(), name() + ".tmp");
            try {
                LOG.info("Unpacking the built-in default model into {} (first use only)", dir);
                for (Entry e : manifest()) {
                    unpack(e, tmp.resolve(e.name()));
                }
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException raced) {
                deleteTree(tmp);
                if (!Files.isRegularFile(dir.resolve("model.safetensors"))) {
                    throw raced;
                }
                // Another process finished first: use its copy.
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack the default model under " + cacheRoot, e);
        }
    }

    private static void unpack(Entry e, Path target) throws IOException {
        MessageDigest md = newDigest();
        long size = 0;
        try (InputStream in = open(e.name()); var out = Files.newOutputStream(target)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
                out.write(buf, 0, n);
                size += n;
            }
        }
        String got = HexFormat.of().formatHex(md.digest());
        if (size != e.size() || !got.equals(e.sha256())) {
            throw new IOException("the default model's " + e.name() + " is damaged in this build (" + size
                    + " bytes, sha256 " + got + "; the MANIFEST says " + e.size() + " bytes, " + e.sha256() + ")");
        }
    }

    private static InputStream open(String name) throws IOException {
        InputStream in = DefaultModel.class.getResourceAsStream(ROOT + name);
        if (in == null) {
            throw new IOException("the default model's " + name + " is missing from this build");
        }
        return in;
    }

    private static String resourceText(String name) {
        try (InputStream in = open(name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] sha256(byte[] data) {
        return newDigest().digest(data);
    }

    private static MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }
}
