package io.expertmesh.core.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PerplexityWindowsTest {
    @Test
    void noStride_nonOverlappingChunks_secondHalfScored() {
        // 1000 text tokens, context 100: each window holds BOS + 99 text tokens; 10 fit.
        PerplexityWindows w = PerplexityWindows.of(1000, 100, 0);
        assertEquals(99, w.advance());
        assertEquals(50, w.scored());
        assertEquals(10, w.count());
        assertEquals(891, w.start(9));
        assertTrue(w.start(9) + 99 <= 1000);
        assertEquals(500, w.scoredTokens());
    }

    @Test
    void stride_windowsEveryStrideTokens_lastStrideScored() {
        PerplexityWindows w = PerplexityWindows.of(1000, 100, 25);
        assertEquals(25, w.advance());
        assertEquals(25, w.scored());
        assertEquals((1000 - 99) / 25 + 1, w.count());
    }

    @Test
    void exactlyOneWindow_fits() {
        assertEquals(1, PerplexityWindows.of(99, 100, 0).count());
    }

    @Test
    void badInput_saysWhatIsWrong() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PerplexityWindows.of(98, 100, 0));
        assertTrue(e.getMessage().contains("98 tokens") && e.getMessage().contains("shorter than one chunk"),
                e.getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> PerplexityWindows.of(1000, 100, 100))
                .getMessage().contains("--stride"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> PerplexityWindows.of(1000, 2, 0))
                .getMessage().contains("--context"));
    }
}
