package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.defaultmodel.DefaultModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's first command on the built-in default model (trained, so it writes English), and the random model
 * behind {@code --random-model} for whoever needs the real DeepSeek-V3 vocabulary.
 */
class DefaultModelTest {
    @TempDir
    Path cache;

    @Test
    void run_withoutModel_writesEnglishWords() {
        RunCommandTest.Run r = RunCommandTest.run("run", "--prompt", "The capital of France is", "--max-tokens", "24",
                "--temperature", "0", "--ignore-eos");
        assertEquals(0, r.exit(), r.err());
        String text = r.out().strip();
        String[] words = text.split("\\s+");
        assertTrue(words.length >= 8, text);
        // Words of letters (with the odd punctuation), not byte salad: a random model's output fails this.
        long wordy = Arrays.stream(words).filter(w -> w.matches("[\\p{Punct}]*[A-Za-z]+(['-][A-Za-z]+)*[\\p{Punct}]*"))
                .count();
        assertTrue(wordy >= 0.8 * words.length, text);
    }

    @Test
    void chat_onTheDefaultModel_usesItsTemplate() {
        Path dir = DefaultModel.ensure(cache);
        RunCommandTest.Run r = RunCommandTest.run("run", "--model", dir.toString(), "--chat", "Hello!",
                "--max-tokens", "4", "--seed", "3", "--ignore-eos", "--json");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(5, lines.length, r.out());
        assertTrue(lines[4].contains("\"finish_reason\":\"length\""), lines[4]);
    }

    @Test
    void randomModel_isGeneratedOnce_withTheDeepSeekTokenizer() {
        Path dir = SyntheticModels.ensureRandomModel(cache);
        assertTrue(Files.isRegularFile(dir.resolve("model.safetensors")));
        assertTrue(Files.isRegularFile(dir.resolve("tokenizer.json")));
        assertEquals(dir, SyntheticModels.ensureRandomModel(cache), "second call reuses the cache");
        RunCommandTest.Run text = RunCommandTest.run("run", "--model", dir.toString(), "--prompt", "Hi",
                "--max-tokens", "4", "--seed", "3", "--ignore-eos");
        assertEquals(0, text.exit(), text.err());
        RunCommandTest.Run both = RunCommandTest.run("run", "--model", dir.toString(), "--random-model", "--prompt",
                "Hi");
        assertEquals(2, both.exit(), both.err());
        assertTrue(both.err().contains("not both"), both.err());
    }
}
