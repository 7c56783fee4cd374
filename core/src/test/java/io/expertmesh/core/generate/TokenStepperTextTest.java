package io.expertmesh.core.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.sample.FinishReason;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.core.tokenizer.TokenizerResources;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The streamed text of a sequence equals the decode of its ids (less a final stop token), also when the last
 * token leaves a UTF-8 character incomplete: the held-back bytes come out as U+FFFD, as decode shows them.
 */
class TokenStepperTextTest {
    static final int[] PROMPT = {0};
    static ModelTokenizer tokenizer;
    /** The ids of one character that the tokenizer splits over several tokens. */
    static int[] split;

    @BeforeAll
    static void load() throws Exception {
        tokenizer = ModelTokenizer.load(TokenizerResources.extractDeepSeekV3(Path.of("target", "test-tokenizers")));
        for (String c : new String[] {"\uD83E\uDD9C", "\uD83E\uDEBF", "\u9F98", "\uD800\uDF48"}) {
            int[] ids = tokenizer.encode(c, false);
            if (ids.length >= 2 && tokenizer.decode(new int[] {ids[0]}, true).endsWith("\uFFFD")) {
                split = ids;
                break;
            }
        }
        assertTrue(split != null, "a character the tokenizer splits over tokens");
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    /** Steps a sequence that makes exactly {@code ids} (one-hot logits, greedy); the events' texts joined. */
    static String stream(TokenStepper stepper, int... ids) {
        int vocab = tokenizer.vocabSize();
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < ids.length; i++) {
            float[] logits = new float[vocab];
            logits[ids[i]] = 10f;
            text.append(stepper.next(logits, 0, vocab, PROMPT.length + i).text());
        }
        assertTrue(stepper.finished(), "the last id ends the sequence");
        return text.toString();
    }

    static TokenStepper stepper(SamplingParams p, int contextLimit) {
        return new TokenStepper(PROMPT, p, tokenizer, Set.of(tokenizer.eosId()), contextLimit, false, null);
    }

    @Test
    void next_maxTokensEndsInsideACharacter_heldBackBytesStreamedAsDecodeShowsThem() {
        int[] ids = {tokenizer.encode("Hi", false)[0], split[0]};
        TokenStepper s = stepper(SamplingParams.greedy().withMaxTokens(2), 100);
        String text = stream(s, ids);
        assertEquals(tokenizer.decode(ids, true), text);
        assertTrue(text.endsWith("\uFFFD"), text);
        assertEquals(FinishReason.LENGTH, s.decision().finishReason());
        assertEquals(text, s.text());
    }

    @Test
    void next_contextFullInsideACharacter_heldBackBytesStreamed() {
        int[] ids = {split[0]};
        TokenStepper s = stepper(SamplingParams.greedy().withMaxTokens(50), PROMPT.length + 1);
        assertEquals(tokenizer.decode(ids, true), stream(s, ids));
        assertEquals(FinishReason.LENGTH, s.decision().finishReason());
    }

    @Test
    void next_stopTokenAfterAnIncompleteCharacter_heldBackBytesStreamedStopTokenTextNot() {
        int[] ids = {split[0], tokenizer.eosId()};
        TokenStepper s = stepper(SamplingParams.greedy().withMaxTokens(50), 100);
        String text = stream(s, ids);
        assertEquals(tokenizer.decode(Arrays.copyOf(ids, 1), true), text);
        assertEquals(FinishReason.STOP, s.decision().finishReason());
        assertEquals(text, s.text());
    }

    @Test
    void next_characterCompletedBeforeTheEnd_streamedWhole() {
        TokenStepper s = stepper(SamplingParams.greedy().withMaxTokens(split.length), 100);
        assertEquals(tokenizer.decode(split, true), stream(s, split));
    }
}
