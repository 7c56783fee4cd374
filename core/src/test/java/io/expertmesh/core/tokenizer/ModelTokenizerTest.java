package io.expertmesh.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Expected ids come from an independent implementation: the npm package {@code @huggingface/tokenizers}
 * 0.2.0 (pure JavaScript) run on the same tokenizer.json, which also adds no BOS by itself.
 */
class ModelTokenizerTest {
    private final ModelTokenizer tok = DeepSeekV3.tokenizer();

    @Test
    void encode_helloWorld_startsWithBosThenReferenceIds() {
        assertArrayEquals(new int[] {0, 19923, 2058}, tok.encode("Hello world"));
    }

    @Test
    void encode_withoutSpecial_hasNoBos() {
        assertArrayEquals(new int[] {19923, 14, 2058, 3, 1730, 477, 440, 33},
                tok.encode("Hello, world! How are you?", false));
    }

    @Test
    void encode_chinese_matchesReferenceIds() {
        assertArrayEquals(new int[] {30594, 303, 3427}, tok.encode("你好，世界", false));
    }

    @Test
    void encode_emojiAndDigits_matchesReferenceIds() {
        assertArrayEquals(
                new int[] {671, 4787, 13769, 46012, 7351, 102, 235, 54994, 1060, 223, 907, 41638, 13757, 16},
                tok.encode("The quick brown fox 🦊 jumps over 13 lazy dogs.", false));
    }

    @Test
    void encode_whitespaceAndNewlines_matchesReferenceIds() {
        assertArrayEquals(new int[] {223, 6646, 13564, 305, 17299, 10284, 201, 2839, 1836},
                tok.encode("  leading spaces and\ttabs\nnewline", false));
    }

    @Test
    void encode_specialTokenStringsInText_mapToTheirIds() {
        String text = "<｜begin▁of▁sentence｜>Hi<｜User｜>x";
        assertArrayEquals(new int[] {0, 23166, 128803, 90}, tok.encode(text, false));
    }

    @Test
    void encode_withSpecial_addsBosExactlyOnce() {
        int[] ids = tok.encode("Hi", true);
        assertEquals(0, ids[0]);
        assertEquals(1, java.util.Arrays.stream(ids).filter(id -> id == 0).count());
        assertEquals(tok.encode("Hi", false).length + 1, ids.length);
    }

    @Test
    void encode_textLongerThan512Tokens_isNotTruncated() {
        String text = "the quick brown fox ".repeat(400);
        int[] ids = tok.encode(text, false);
        assertEquals(1 + 4 * 400, ids.length); // the trailing space is a token of its own
        assertEquals(text, tok.decode(ids));
    }

    @ParameterizedTest
    @ValueSource(strings = {"Hello world", "你好，世界！这是一个测试。", "emoji 🦊👨‍👩‍👧 mixed 中文 and English",
            "  two leading spaces", "tabs\tand\nnewlines\r\n", "日本語のテキスト、カタカナ", "x = f(1, 2) // code",
            "no clean-up : don 't , ok . ?"})
    void decode_encodedText_roundTrips(String text) {
        assertEquals(text, tok.decode(tok.encode(text, false)));
    }

    @Test
    void decode_skipSpecialTokens_dropsBos() {
        int[] ids = tok.encode("Hello world");
        assertEquals("<｜begin▁of▁sentence｜>Hello world", tok.decode(ids));
        assertEquals("Hello world", tok.decode(ids, true));
    }

    @Test
    void decode_negativeId_throws() {
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {5, -1}));
    }

    @Test
    void specialIds_deepSeekV3_matchConfig() {
        assertEquals(0, tok.bosId());
        assertEquals(1, tok.eosId());
        assertEquals(Set.of(1), tok.stopIds());
        assertEquals("<｜begin▁of▁sentence｜>", tok.tokenText(0));
        assertEquals(128803, tok.tokenId("<｜User｜>").orElseThrow());
        assertTrue(tok.isSpecial(0));
        assertFalse(tok.isSpecial(2058));
    }

    @Test
    void vocabSize_deepSeekV3_countsAddedTokens() {
        assertEquals(128815, tok.vocabSize());
        assertEquals("<｜tool▁sep｜>", tok.tokenText(128814));
        assertEquals(null, tok.tokenText(128815));
    }

    @Test
    void tokenText_byteLevelPiece_isRawPiece() {
        assertEquals("Ġworld", tok.tokenText(2058));
        assertEquals("Hello", tok.tokenText(19923));
    }

    @Test
    void stopIds_generationConfigList_areAdded(@TempDir Path dir) throws IOException {
        copyTokenizer(dir, true);
        Files.writeString(dir.resolve("generation_config.json"), "{\"bos_token_id\": 0, \"eos_token_id\": [1, 128803]}");
        try (ModelTokenizer t = ModelTokenizer.load(dir)) {
            assertEquals(Set.of(1, 128803), t.stopIds());
        }
    }

    @Test
    void stopIds_generationConfigInt_isAdded(@TempDir Path dir) throws IOException {
        copyTokenizer(dir, true);
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": 128804}");
        try (ModelTokenizer t = ModelTokenizer.load(dir)) {
            assertEquals(Set.of(1, 128804), t.stopIds());
        }
    }

    @Test
    void load_tokenizerJsonOnly_addsNoBosAndHasNoTemplate(@TempDir Path dir) throws IOException {
        copyTokenizer(dir, false);
        try (ModelTokenizer t = ModelTokenizer.load(dir)) {
            assertArrayEquals(new int[] {19923, 2058}, t.encode("Hello world"));
            assertEquals(-1, t.bosId());
            assertEquals(Set.of(), t.stopIds());
            assertFalse(t.hasChatTemplate());
            assertThrows(IllegalStateException.class,
                    () -> t.applyChatTemplate(java.util.List.of(ChatMessage.user("hi")), true));
        }
    }

    @Test
    void load_dirWithoutTokenizer_throwsNoSuchFileNamingTheFile(@TempDir Path dir) {
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> ModelTokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
        assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
    }

    @Test
    void loadIfPresent_dirWithoutTokenizer_isEmpty(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{}");
        assertTrue(ModelTokenizer.loadIfPresent(dir).isEmpty());
    }

    @Test
    void loadIfPresent_deepSeekDir_isPresent() throws IOException {
        try (ModelTokenizer t = ModelTokenizer.loadIfPresent(DeepSeekV3.dir()).orElseThrow()) {
            assertEquals(0, t.bosId());
        }
    }

    @Test
    void load_malformedTokenizerJson_throwsIOException(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": ");
        assertThrows(IOException.class, () -> ModelTokenizer.load(dir));
    }

    @Test
    void load_anyTokenizer_forcesDjlOfflineMode() {
        assertEquals("true", System.getProperty("ai.djl.offline"));
    }

    @Test
    void encode_postProcessorAddsBosAndConfigSaysAddBos_addsBosOnce(@TempDir Path dir) throws IOException {
        writeWithBosPostProcessor(dir);
        Files.copy(DeepSeekV3.dir().resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        try (ModelTokenizer t = ModelTokenizer.load(dir)) {
            assertArrayEquals(new int[] {0, 19923, 2058}, t.encode("Hello world"));
            assertArrayEquals(new int[] {19923, 2058}, t.encode("Hello world", false));
        }
    }

    @Test
    void encode_postProcessorAddsBosAndNoConfig_postProcessorAddsBos(@TempDir Path dir) throws IOException {
        writeWithBosPostProcessor(dir);
        try (ModelTokenizer t = ModelTokenizer.load(dir)) {
            assertArrayEquals(new int[] {0, 19923, 2058}, t.encode("Hello world"));
            assertArrayEquals(new int[] {19923, 2058}, t.encode("Hello world", false));
        }
    }

    /** The DeepSeek-V3 tokenizer.json with a Llama-3 style post-processor that adds BOS itself. */
    private static void writeWithBosPostProcessor(Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = (ObjectNode) json.readTree(DeepSeekV3.dir().resolve("tokenizer.json").toFile());
        String bos = "<｜begin▁of▁sentence｜>";
        root.set("post_processor", json.readTree("""
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": "%1$s", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                 "pair": [{"SpecialToken": {"id": "%1$s", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": "%1$s", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                 "special_tokens": {"%1$s": {"id": "%1$s", "ids": [0], "tokens": ["%1$s"]}}}
                """.formatted(bos)));
        json.writeValue(dir.resolve("tokenizer.json").toFile(), root);
    }

    private static void copyTokenizer(Path dir, boolean withConfig) throws IOException {
        Files.copy(DeepSeekV3.dir().resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        if (withConfig) {
            Files.copy(DeepSeekV3.dir().resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        }
    }
}
