package io.expertmesh.core.tokenizer;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.zip.GZIPInputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tokenizers shipped inside the core jar, so the built-in default model (DeepSeek-V3) can encode and
 * decode without a model download and tests run without any external files.
 *
 * <p>The native tokenizer reads files, not classpath streams, so the resources are written once into
 * a cache directory; an existing file of the right size is reused. Each file is written to a
 * temporary name and moved into place atomically, so concurrent extractions never see half a file.
 */
public final class TokenizerResources {
    private static final Logger log = LoggerFactory.getLogger(TokenizerResources.class);

    /** Classpath folder of the DeepSeek-V3 tokenizer (tokenizer.json.gz and tokenizer_config.json). */
    public static final String DEEPSEEK_V3 = "/io/expertmesh/core/tokenizer/deepseek-v3/";

    private TokenizerResources() {
    }

    /**
     * Writes the DeepSeek-V3 {@code tokenizer.json} and {@code tokenizer_config.json} into
     * {@code cacheDir/deepseek-v3/} unless already there, and returns that directory for
     * {@link ModelTokenizer#load}.
     */
    public static Path extractDeepSeekV3(Path cacheDir) throws IOException {
        Path dir = cacheDir.resolve("deepseek-v3");
        Files.createDirectories(dir);
        extract(DEEPSEEK_V3 + "tokenizer.json.gz", true, dir.resolve(ModelTokenizer.TOKENIZER_FILE));
        extract(DEEPSEEK_V3 + TokenizerConfig.TOKENIZER_CONFIG_FILE, false,
                dir.resolve(TokenizerConfig.TOKENIZER_CONFIG_FILE));
        return dir;
    }

    private static void extract(String resource, boolean gzipped, Path target) throws IOException {
        byte[] stored = readResource(resource);
        long expectedSize = gzipped ? gzipOriginalSize(stored) : stored.length;
        if (Files.isRegularFile(target) && Files.size(target) == expectedSize) {
            log.debug("{} already extracted", target);
            return;
        }
        Path tmp = Files.createTempFile(target.getParent(), target.getFileName().toString(), ".tmp");
        try {
            try (InputStream in = gzipped
                    ? new GZIPInputStream(new ByteArrayInputStream(stored), 1 << 16)
                    : new ByteArrayInputStream(stored)) {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            if (Files.size(tmp) != expectedSize) {
                throw new IOException("extracted " + resource + " has " + Files.size(tmp)
                        + " bytes, expected " + expectedSize);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            log.info("extracted {} to {} ({} bytes)", resource, target, expectedSize);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static byte[] readResource(String resource) throws IOException {
        try (InputStream in = TokenizerResources.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("resource " + resource + " is missing from the classpath");
            }
            return in.readAllBytes();
        }
    }

    /** The uncompressed size, from the gzip trailer (ISIZE, little-endian, modulo 2^32). */
    private static long gzipOriginalSize(byte[] gz) throws IOException {
        if (gz.length < 18) {
            throw new IOException("gzip resource too short: " + gz.length + " bytes");
        }
        int n = gz.length;
        return (gz[n - 4] & 0xFFL) | (gz[n - 3] & 0xFFL) << 8 | (gz[n - 2] & 0xFFL) << 16 | (gz[n - 1] & 0xFFL) << 24;
    }
}
