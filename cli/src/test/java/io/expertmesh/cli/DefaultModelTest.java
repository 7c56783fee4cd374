package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.synthetic.SyntheticModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's first command: the built-in default model, generated on first use, with its real tokenizer. */
class DefaultModelTest {
    @TempDir
    Path cache;

    @Test
    void ensureDefaultModel_thenRunChat_streamsTextFromTheDefaultModel() {
        Path dir = SyntheticModels.ensureDefaultModel(cache);
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));
        assertTrue(Files.isRegularFile(dir.resolve("tokenizer.json")));
        assertEquals(dir, SyntheticModels.ensureDefaultModel(cache), "second call reuses the cache");

        RunCommandTest.Run r = RunCommandTest.run("run", "--model", dir.toString(), "--chat", "Hello!",
                "--max-tokens", "4", "--seed", "3", "--ignore-eos", "--json");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(5, lines.length, r.out());
        assertTrue(lines[4].contains("\"finish_reason\":\"length\""), lines[4]);
        RunCommandTest.Run text = RunCommandTest.run("run", "--model", dir.toString(), "--prompt", "Hi",
                "--max-tokens", "4", "--seed", "3", "--ignore-eos");
        assertEquals(0, text.exit(), text.err());
        assertFalse(text.out().isBlank(), "text output expected");
    }
}
