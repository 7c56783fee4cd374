package io.expertmesh.core.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class StopCheckerTest {

    private static final int EOS = 2;
    private static final SamplingParams P = SamplingParams.defaults().withMaxTokens(100);

    private static StopChecker checker(SamplingParams p) {
        return new StopChecker(p, Set.of(EOS));
    }

    private static StopChecker stops(String... stops) {
        return checker(P.withStopStrings(List.of(stops)));
    }

    @Test
    void onToken_stopStringSpanningTwoDeltas_truncatesBeforeIt() {
        var c = stops("</end>");
        var d1 = c.onToken(10, "Hello </");
        assertFalse(d1.finished());
        assertEquals("Hello ", d1.emit()); // "</" might start the stop string
        var d2 = c.onToken(11, "end> and more");
        assertEquals(FinishReason.STOP, d2.finishReason());
        assertEquals("", d2.emit());
        assertEquals("</end>", d2.stopString());
        assertNull(d2.stopTokenId());
        assertEquals("Hello ", c.text());
    }

    @Test
    void onToken_partialStopThenMismatch_releasesHeldText() {
        var c = stops("STOP");
        assertEquals("ab", c.onToken(1, "abS").emit());
        assertEquals("", c.onToken(1, "T").emit());
        var d = c.onToken(1, "x");
        assertFalse(d.finished());
        assertEquals("STx", d.emit());
        assertEquals("abSTx", c.text());
    }

    @Test
    void onToken_overlappingPrefixes_holdsOnlyPossibleStart() {
        var c = stops("aab");
        assertEquals("", c.onToken(1, "a").emit());
        assertEquals("", c.onToken(1, "a").emit());
        assertEquals("a", c.onToken(1, "a").emit()); // "aaa": only the last "aa" can still start "aab"
        var d = c.onToken(1, "b");
        assertTrue(d.finished());
        assertEquals("", d.emit());
        assertEquals("a", c.text());
    }

    @Test
    void onToken_stopInsideDelta_emitsTextBeforeIt() {
        var c = stops("STOP");
        var d = c.onToken(1, "foo STOP bar");
        assertEquals(FinishReason.STOP, d.finishReason());
        assertEquals("foo ", d.emit());
        assertEquals("foo ", c.text());
    }

    @Test
    void onToken_twoStopStrings_earliestMatchWins() {
        var c = stops("b", "ab");
        var d = c.onToken(1, "xab");
        assertEquals("ab", d.stopString());
        assertEquals("x", d.emit());
    }

    @Test
    void onToken_stopTokenId_finishesWithStopAndDropsItsText() {
        var c = checker(P.withStopTokenIds(Set.of(7)));
        assertEquals("hi", c.onToken(5, "hi").emit());
        var d = c.onToken(7, "<|im_end|>");
        assertEquals(FinishReason.STOP, d.finishReason());
        assertEquals(7, d.stopTokenId());
        assertEquals("", d.emit());
        assertEquals("hi", c.text());
    }

    @Test
    void onToken_eosAfterHeldText_releasesIt() {
        var c = stops("ab");
        assertEquals("x", c.onToken(1, "xa").emit());
        var d = c.onToken(EOS, "");
        assertEquals(FinishReason.STOP, d.finishReason());
        assertEquals("a", d.emit());
        assertEquals(EOS, d.stopTokenId());
    }

    @Test
    void onToken_eosWithIgnoreEos_continues() {
        var c = checker(P.withIgnoreEos(true).withStopTokenIds(Set.of(9)));
        var d = c.onToken(EOS, "</s>");
        assertFalse(d.finished());
        assertEquals("</s>", d.emit());
        assertTrue(c.onToken(9, "").finished(), "stop_token_ids still stop with ignore_eos");
    }

    @Test
    void onToken_maxTokens_finishesWithLengthAndReleasesHeldText() {
        var c = checker(P.withMaxTokens(3).withStopStrings(List.of("END")));
        assertFalse(c.onToken(1, "a").finished());
        assertEquals("b", c.onToken(1, "bE").emit());
        var d = c.onToken(1, "N");
        assertEquals(FinishReason.LENGTH, d.finishReason());
        assertEquals("EN", d.emit());
        assertEquals("abEN", c.text());
    }

    @Test
    void onToken_stopAndLengthOnSameToken_stopWins() {
        var c = checker(P.withMaxTokens(1));
        assertEquals(FinishReason.STOP, c.onToken(EOS, "").finishReason());
        var s = checker(P.withMaxTokens(1).withStopStrings(List.of("!")));
        assertEquals(FinishReason.STOP, s.onToken(1, "hey!").finishReason());
    }

    @Test
    void onToken_afterFinish_throws() {
        var c = checker(P.withMaxTokens(1));
        c.onToken(1, "x");
        assertThrows(IllegalStateException.class, () -> c.onToken(1, "y"));
    }

    @Test
    void onToken_noStopStrings_emitsEverythingAtOnce() {
        var c = checker(P);
        assertEquals("abc", c.onToken(1, "abc").emit());
        assertEquals("", c.onToken(1, "").emit()); // a token whose text is not complete yet
        assertEquals(3, c.emittedLength());
        assertEquals(2, c.tokenCount());
    }

    @Test
    void finish_cancelled_returnsHeldText() {
        var c = stops("###");
        c.onToken(1, "ok##");
        assertEquals("##", c.finish(FinishReason.CANCELLED));
        assertEquals(FinishReason.CANCELLED, c.finishDecision().finishReason());
        assertEquals("", c.finish(FinishReason.ERROR));
    }

    @Test
    void finishReason_wireNames_matchOpenAi() {
        assertEquals("stop", FinishReason.STOP.wireName());
        assertEquals("length", FinishReason.LENGTH.wireName());
        assertEquals("cancelled", FinishReason.CANCELLED.wireName());
        assertEquals("error", FinishReason.ERROR.wireName());
        assertEquals(FinishReason.LENGTH, FinishReason.fromWireName("length"));
        assertThrows(IllegalArgumentException.class, () -> FinishReason.fromWireName("LENGTH"));
    }
}
