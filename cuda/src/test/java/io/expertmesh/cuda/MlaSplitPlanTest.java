package io.expertmesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

class MlaSplitPlanTest {

    @Test
    void splits_batch64On132Sms_twoSplitsFillOneWave() {
        // 64 sequences x 2 splits = 128 blocks <= 132 SMs: one wave, each block half a context.
        assertEquals(2, MlaSplitPlan.splits(64, 1, 4096, 132));
    }

    @Test
    void splits_oneLongSequence_spreadOverAtLeastAsManyBlocksAsTheSmsAllow() {
        // 512 tiles: 128 splits of 4 tiles (132 would still give 4 tiles per block); past the old cap of 64.
        assertEquals(128, MlaSplitPlan.splits(1, 1, 32768, 132));
        // 16 head groups (128 heads): 8 splits = 128 blocks in one wave (9 would take two waves of 132).
        assertEquals(8, MlaSplitPlan.splits(1, 16, 32768, 132));
    }

    @Test
    void splits_fromRealLengths_oneLongAmongShort_splitsTheLongOne() {
        // Planned from the longest alone (64 x 32K), two splits would leave the long sequence's block 256 tiles
        // long while the short ones finish at once; from the real lengths it is cut to a few tiles per block.
        int[] lens = new int[64];
        Arrays.fill(lens, 10);
        lens[17] = 32768;
        assertEquals(2, MlaSplitPlan.splits(64, 1, 32768, 132));
        int s = MlaSplitPlan.splits(lens, 64, 1, 132);
        assertTrue(s >= 32 && 512 / s <= 16, "splits " + s);
    }

    @Test
    void splits_emptySequences_needNoBlocks() {
        assertEquals(1, MlaSplitPlan.splits(new int[]{0, 0, 0}, 3, 1, 132));
        // Empty sequences beside a 4096-long one: planned as that one alone (64 tiles over 64 splits of 1).
        assertEquals(MlaSplitPlan.splits(new int[]{4096}, 1, 1, 132),
                MlaSplitPlan.splits(new int[]{0, 4096, 0}, 3, 1, 132));
    }

    @Test
    void splits_veryDifferentLengths_noWorseThanPlanningFromTheLongest() {
        int[] lens = {1, 4096, 77, 300, 0, 2048, 64, 65};
        int planned = MlaSplitPlan.splits(lens, lens.length, 1, 132);
        int fromMax = MlaSplitPlan.splits(lens.length, 1, 4096, 132);
        assertTrue(longestBlock(lens, planned) <= longestBlock(lens, fromMax), planned + " vs " + fromMax);
    }

    private static int longestBlock(int[] lens, int splits) {
        int longest = 0;
        for (int len : lens) {
            int tiles = (len + MlaSplitPlan.TILE - 1) / MlaSplitPlan.TILE;
            longest = Math.max(longest, (tiles + splits - 1) / splits);
        }
        return longest;
    }

    @Test
    void splits_neverMoreThanTiles() {
        assertEquals(2, MlaSplitPlan.splits(1, 1, 100, 132));
        assertEquals(1, MlaSplitPlan.splits(1, 1, 1, 132));
    }

    @Test
    void splits_fullBatchAlreadyFillsTheGpu_noSplit() {
        assertEquals(1, MlaSplitPlan.splits(132, 1, 4096, 132));
    }

    @Test
    void splits_badArguments_rejectedWithMessage() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MlaSplitPlan.splits(0, 1, 10, 132));
        assertEquals("batch, head groups, length and SM count must be positive, got 0, 1, 10, 132", e.getMessage());
    }

    @Test
    void sharedBytes_matchesTheKernelLayout() {
        // Q 18688 + K stages*74752 + S 8704 + P 2304 + O 33024 + stats 256 (each 128-byte aligned)
        assertEquals(212_480, MlaDecode.sharedBytes(2));
        assertEquals(137_728, MlaDecode.sharedBytes(1));
    }
}
