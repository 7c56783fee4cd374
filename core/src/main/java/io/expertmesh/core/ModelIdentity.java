package io.expertmesh.core;

import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.safetensors.TensorInfo;
import io.expertmesh.core.safetensors.WeightDigests;
import io.expertmesh.core.synthetic.SyntheticModels;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * What a model is, independent of where it lives: SHA-256 over its {@code config.json}, every tensor's name,
 * dtype and shape, and the SHA-256 of every weight file's contents (named by file name, not path). Two copies of
 * one model in different directories or containers have the same identity; other weights under the same path
 * do not. The distributed KV tier keys blocks by it (a block computed with other weights is other KV), so it
 * must never include the path.
 *
 * @param hex 64 hex digits
 */
public record ModelIdentity(String hex) {
    private static final String VERSION = "expertmesh-model-identity-v1";

    public ModelIdentity {
        if (hex == null || !hex.matches("[0-9a-f]{64}")) {
            throw new IllegalArgumentException("a model identity is 64 lowercase hex digits, got " + hex);
        }
    }

    /**
     * {@link #of(Path, Checkpoint, WeightDigests)} with the weight digests cached under
     * {@code $EXPERTMESH_CACHE/weight-digests}: reads every weight file once per file version.
     */
    public static ModelIdentity of(Path dir, Checkpoint checkpoint) throws IOException {
        return of(dir, checkpoint, WeightDigests.under(SyntheticModels.defaultCacheRoot()));
    }

    /** The identity of the model in {@code dir} whose weights {@code checkpoint} holds. */
    public static ModelIdentity of(Path dir, Checkpoint checkpoint, WeightDigests digests) throws IOException {
        MessageDigest md = sha256();
        update(md, VERSION);
        Path config = dir.resolve("config.json");
        update(md, "config.json");
        md.update(Files.isRegularFile(config) ? Files.readAllBytes(config) : new byte[0]);
        TreeMap<String, Path> files = new TreeMap<>();
        for (String name : new TreeSet<>(checkpoint.names())) {
            TensorInfo t = checkpoint.info(name);
            update(md, "tensor " + name + " " + t.dtype() + " " + Arrays.toString(t.shape()) + " in "
                    + t.file().getFileName());
            files.put(t.file().getFileName().toString(), t.file());
        }
        // Shards are hashed in parallel (a sharded checkpoint has up to hundreds of files), then folded in name order.
        Map<String, String> sha;
        try {
            sha = files.entrySet().parallelStream().collect(Collectors.toMap(Map.Entry::getKey, f -> {
                try {
                    return digests.digest(f.getValue());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }));
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        for (String name : files.keySet()) {
            update(md, "file " + name + " sha256 " + sha.get(name));
        }
        return new ModelIdentity(HexFormat.of().formatHex(md.digest()));
    }

    private static void update(MessageDigest md, String field) {
        md.update(field.getBytes(StandardCharsets.UTF_8));
        md.update((byte) 0);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every JVM", e);
        }
    }

    @Override
    public String toString() {
        return "ModelIdentity[" + hex.substring(0, 16) + "…]";
    }
}
