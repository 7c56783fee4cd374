package io.expertmesh.defaultmodel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DefaultModelTest {
    @TempDir
    Path cache;

    @Test
    void ensure_unpacksEveryManifestFile_once_underANameThatFollowsTheContent() throws Exception {
        List<DefaultModel.Entry> manifest = DefaultModel.manifest();
        assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "generation_config.json"), manifest.stream().map(DefaultModel.Entry::name).toList());
        Path dir = DefaultModel.ensure(cache);
        assertEquals(DefaultModel.name(), dir.getFileName().toString());
        assertTrue(DefaultModel.name().matches("expertmesh-default-[0-9a-f]{12}"), DefaultModel.name());
        for (DefaultModel.Entry e : manifest) {
            assertEquals(e.size(), Files.size(dir.resolve(e.name())), e.name());
        }
        long stamp = Files.getLastModifiedTime(dir.resolve("model.safetensors")).toMillis();
        assertEquals(dir, DefaultModel.ensure(cache), "a second call reuses the unpacked copy");
        assertEquals(stamp, Files.getLastModifiedTime(dir.resolve("model.safetensors")).toMillis());
        try (var left = Files.list(dir.getParent())) {
            assertEquals(1, left.count(), "no temporary directory is left behind");
        }
    }
}
