package io.expertmesh.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.safetensors.WeightDigests;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model's identity follows its contents, never its path; weight digests are cached by path, size and time. */
class ModelIdentityTest {
    private static final Path FIXTURE = Path.of("src/test/resources/fixtures/deepseek-v3-tiny/f32");

    @TempDir
    Path tmp;

    private static Path copy(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(FIXTURE.resolve(f), dir.resolve(f));
        }
        return dir;
    }

    private ModelIdentity identity(Path dir) throws IOException {
        try (Checkpoint c = Checkpoint.open(dir)) {
            return ModelIdentity.of(dir, c, new WeightDigests(tmp.resolve("digests"), 0));
        }
    }

    /** Flips the low bit of the file's last byte (a float of the last tensor): other weights, same shapes. */
    private static void changeOneWeight(Path file) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(f.length() - 1);
            int b = f.read();
            f.seek(f.length() - 1);
            f.write(b ^ 1);
        }
    }

    @Test
    void of_copiesInDifferentDirectories_sameIdentity() throws IOException {
        assertEquals(identity(copy(tmp.resolve("a/model"))), identity(copy(tmp.resolve("elsewhere/b"))));
    }

    @Test
    void of_samePathOtherWeightsOrConfig_otherIdentity() throws IOException {
        Path dir = copy(tmp.resolve("m"));
        ModelIdentity before = identity(dir);

        changeOneWeight(dir.resolve("model.safetensors"));
        ModelIdentity otherWeights = identity(dir);
        Files.writeString(dir.resolve("config.json"), Files.readString(dir.resolve("config.json")) + " ");
        ModelIdentity otherConfig = identity(dir);

        assertNotEquals(before, otherWeights);
        assertNotEquals(otherWeights, otherConfig);
    }

    @Test
    void digest_cachedBySizeAndTime_recomputedWhenTheFileChanges() throws IOException {
        Path file = copy(tmp.resolve("m")).resolve("model.safetensors");
        // Written a minute ago: a file modified in the last seconds is never cached (see the test below).
        Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis() - 60_000));
        Path cache = tmp.resolve("cache");
        WeightDigests digests = new WeightDigests(cache, 0);
        String first = digests.digest(file);
        try (var sidecars = Files.list(cache)) {
            assertEquals(1, sidecars.count(), "one sidecar per file");
        }

        FileTime time = Files.getLastModifiedTime(file);
        changeOneWeight(file);
        Files.setLastModifiedTime(file, FileTime.fromMillis(time.toMillis() + 5_000));
        String changed = digests.digest(file);

        assertNotEquals(first, changed, "the file changed: read again");
        assertEquals(changed, new WeightDigests(null, 0).digest(file), "the cached value is the file's digest");
        assertTrue(changed.matches("[0-9a-f]{64}"));
    }

    @Test
    void digest_ofAFileJustWritten_notCached_soAnEditInTheSameClockTickIsSeen() throws IOException {
        Path file = copy(tmp.resolve("m")).resolve("model.safetensors");
        FileTime written = Files.getLastModifiedTime(file);
        Path cache = tmp.resolve("cache");
        WeightDigests digests = new WeightDigests(cache, 0);
        String first = digests.digest(file);
        if (Files.exists(cache)) {
            try (var sidecars = Files.list(cache)) {
                assertEquals(0, sidecars.count(), "no sidecar for a file just written");
            }
        }
        // The same size and, as a coarse file clock gives two writes in one tick, the same modification time.
        changeOneWeight(file);
        Files.setLastModifiedTime(file, written);
        assertNotEquals(first, digests.digest(file), "an edit within the same clock tick is read");
    }
}
