package io.expertmesh.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class IncrementalDetokenizerTest {
    private final ModelTokenizer tok = DeepSeekV3.tokenizer();

    @ParameterizedTest
    @ValueSource(strings = {
        "你好，世界！这是一个关于混合专家模型的测试。",
        "🦊🦊 family 👨‍👩‍👧‍👦 flags 🇯🇵🇩🇪 skin 👍🏽",
        "Mixed 中文 and English, with emoji 😀 and numbers 12345.",
        " leading space, then\n\nnewlines and\ttabs  ",
        "Ünïcödé àccents, Ελληνικά, русский, العربية, हिन्दी",
        "<｜begin▁of▁sentence｜>special<｜User｜>tokens"})
    void add_everyTokenThenFlush_concatenationEqualsDecode(String text) {
        int[] ids = tok.encode(text, false);
        List<String> deltas = stream(ids, false);
        assertEquals(tok.decode(ids), String.join("", deltas));
        for (String delta : deltas) {
            assertFalse(delta.contains("\uFFFD"), "half a character emitted: " + deltas);
        }
    }

    @Test
    void add_skipSpecialTokens_concatenationEqualsSkippingDecode() {
        int[] ids = tok.encode("Hello 世界 🦊", true);
        assertEquals(0, ids[0]);
        List<String> deltas = stream(ids, true);
        assertEquals(tok.decode(ids, true), String.join("", deltas));
        assertEquals("Hello 世界 🦊", String.join("", deltas));
    }

    @Test
    void add_emojiSplitOverThreeTokens_holdsBackUntilComplete() {
        // " 🦊" is three byte-level tokens: "ĠðŁ", "¦", "Ĭ".
        IncrementalDetokenizer detok = tok.newDetokenizer(false);
        assertEquals("The", detok.add(671));
        assertEquals("", detok.add(7351));
        assertEquals("", detok.add(102));
        assertEquals(" 🦊", detok.add(235));
        assertEquals("", detok.flush());
    }

    @Test
    void flush_incompleteCharacterAtEnd_returnsWhatDecodeGives() {
        IncrementalDetokenizer detok = tok.newDetokenizer(false);
        assertEquals("", detok.add(7351));
        assertEquals(tok.decode(new int[] {7351}), detok.flush());
        assertEquals("", detok.flush());
    }

    @Test
    void add_firstTokenWithLeadingSpace_keepsTheSpaceLikeDecode() {
        int[] ids = tok.encode(" world", false);
        IncrementalDetokenizer detok = tok.newDetokenizer(false);
        StringBuilder out = new StringBuilder();
        for (int id : ids) {
            out.append(detok.add(id));
        }
        out.append(detok.flush());
        assertEquals(" world", out.toString());
        assertEquals(tok.decode(ids), out.toString());
    }

    @Test
    void add_afterPromptContext_emitsOnlyGeneratedText() {
        int[] prompt = tok.encode("The answer is", true);
        int[] generated = tok.encode(" forty-two 🦊 答案", false);
        IncrementalDetokenizer detok = new IncrementalDetokenizer(tok, prompt, false);
        StringBuilder out = new StringBuilder();
        for (int id : generated) {
            out.append(detok.add(id));
        }
        out.append(detok.flush());
        assertEquals(" forty-two 🦊 答案", out.toString());
        assertEquals(generated.length, detok.generatedCount());
    }

    @Test
    void add_longGeneration_staysEqualToDecodeAcrossCompaction() {
        String text = "混合专家 mixture of experts 🦊 ".repeat(600);
        int[] ids = tok.encode(text, false);
        assertEquals(text, String.join("", stream(ids, false)));
    }

    @Test
    void add_negativeId_throws() {
        assertThrows(IllegalArgumentException.class, () -> tok.newDetokenizer(false).add(-3));
    }

    private List<String> stream(int[] ids, boolean skipSpecial) {
        IncrementalDetokenizer detok = tok.newDetokenizer(skipSpecial);
        List<String> deltas = new ArrayList<>();
        for (int id : ids) {
            deltas.add(detok.add(id));
        }
        deltas.add(detok.flush());
        return deltas;
    }
}
