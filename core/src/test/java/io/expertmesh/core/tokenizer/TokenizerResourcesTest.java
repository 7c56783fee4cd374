package io.expertmesh.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerResourcesTest {

    @Test
    void extractDeepSeekV3_emptyCache_writesBothFiles(@TempDir Path cache) throws IOException {
        Path dir = TokenizerResources.extractDeepSeekV3(cache);
        assertEquals(7_847_652, Files.size(dir.resolve("tokenizer.json")));
        assertEquals(3_128, Files.size(dir.resolve("tokenizer_config.json")));
        try (var files = Files.list(dir)) {
            assertEquals(2, files.count(), "no temporary files left behind");
        }
    }

    @Test
    void extractDeepSeekV3_alreadyExtracted_leavesFilesAlone(@TempDir Path cache) throws IOException {
        Path dir = TokenizerResources.extractDeepSeekV3(cache);
        FileTime old = FileTime.fromMillis(1_000_000_000L);
        Files.setLastModifiedTime(dir.resolve("tokenizer.json"), old);
        TokenizerResources.extractDeepSeekV3(cache);
        assertEquals(old, Files.getLastModifiedTime(dir.resolve("tokenizer.json")));
    }

    @Test
    void extractDeepSeekV3_truncatedFile_isRewritten(@TempDir Path cache) throws IOException {
        Path dir = TokenizerResources.extractDeepSeekV3(cache);
        Files.writeString(dir.resolve("tokenizer.json"), "{");
        TokenizerResources.extractDeepSeekV3(cache);
        assertEquals(7_847_652, Files.size(dir.resolve("tokenizer.json")));
        assertTrue(Files.readString(dir.resolve("tokenizer.json")).startsWith("{"));
    }
}
