package io.expertmesh.core.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The shipped DeepSeek-V3 tokenizer, extracted and loaded once for all tests of the JVM. */
final class DeepSeekV3 {
    static final Path CACHE = Path.of("target", "test-tokenizers");
    private static ModelTokenizer tokenizer;

    private DeepSeekV3() {
    }

    static synchronized Path dir() {
        try {
            return TokenizerResources.extractDeepSeekV3(CACHE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static synchronized ModelTokenizer tokenizer() {
        if (tokenizer == null) {
            try {
                tokenizer = ModelTokenizer.load(dir());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return tokenizer;
    }
}
