package io.expertmesh.router.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The per-step split decision, fed step times that a test chooses (no clock). */
class SplitChooserTest {
    /**
     * Runs {@code steps} steps of {@code tokens} tokens, a split one taking {@code splitNs} and a whole one
     * {@code wholeNs}; returns how many were split.
     */
    private static int splits(SplitChooser c, int steps, int tokens, long splitNs, long wholeNs) {
        int n = 0;
        for (int i = 0; i < steps; i++) {
            boolean split = c.split(tokens);
            n += split ? 1 : 0;
            c.record(tokens, split, split ? splitNs : wholeNs);
        }
        return n;
    }

    @Test
    void tries_both_then_keeps_the_faster_withRareExploration() {
        SplitChooser c = SplitChooser.adaptive();
        int warm = splits(c, 2 * SplitChooser.WARMUP, 32, 1_000_000, 2_000_000);
        assertEquals(SplitChooser.WARMUP, warm, "warm-up alternates");
        int steps = 10 * SplitChooser.EXPLORE_EVERY;
        int split = splits(c, steps, 32, 1_000_000, 2_000_000);
        assertEquals(steps - steps / SplitChooser.EXPLORE_EVERY, split, "the faster (split) except one step in "
                + SplitChooser.EXPLORE_EVERY);

        SplitChooser slow = SplitChooser.adaptive();
        splits(slow, 2 * SplitChooser.WARMUP, 32, 3_000_000, 2_000_000);
        assertEquals(steps / SplitChooser.EXPLORE_EVERY, splits(slow, steps, 32, 3_000_000, 2_000_000),
                "a split that is slower is only re-tried");
    }

    @Test
    void follows_a_change_in_which_is_faster() {
        SplitChooser c = SplitChooser.adaptive();
        assertTrue(splits(c, 200, 16, 1_000_000, 2_000_000) > 190, "splitting wins at first");
        // The network got faster (or the machine busier): splitting now loses. A few split steps move its average
        // past the other's; from then on only the exploring steps split.
        int afterChange = splits(c, 4 * SplitChooser.EXPLORE_EVERY, 16, 3_000_000, 2_000_000);
        assertTrue(afterChange <= 4 + 4, "switched within a few steps: " + afterChange);
        assertEquals(4, splits(c, 4 * SplitChooser.EXPLORE_EVERY, 16, 3_000_000, 2_000_000),
                "then one exploring split in " + SplitChooser.EXPLORE_EVERY);
    }

    @Test
    void batch_sizes_are_judged_apart() {
        SplitChooser c = SplitChooser.adaptive();
        // Small steps: splitting loses; large steps: it wins.
        for (int i = 0; i < 100; i++) {
            boolean s = c.split(2);
            c.record(2, s, s ? 300_000 : 200_000);
            boolean l = c.split(64);
            c.record(64, l, l ? 4_000_000 : 8_000_000);
        }
        int small = 0;
        int large = 0;
        for (int i = 0; i < 31; i++) {
            small += c.split(2) ? 1 : 0;
            large += c.split(64) ? 1 : 0;
        }
        assertTrue(small <= 1, "small steps stay whole: " + small);
        assertTrue(large >= 30, "large steps split: " + large);
    }

    @Test
    void always_splits_whatever_it_measures() {
        SplitChooser c = SplitChooser.always();
        assertEquals(100, splits(c, 100, 8, 9_000_000, 1_000));
    }
}
