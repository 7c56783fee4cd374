package io.expertmesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class MlaSplitPlanTest {

    @Test
    void splits_batch64On132Sms_twoSplitsFillOneWave() {
        // 64 sequences x 2 splits = 128 blocks <= 132 SMs: one wave, each block half a context.
        assertEquals(2, MlaSplitPlan.splits(64, 1, 4096, 132));
    }

    @Test
    void splits_oneLongSequence_spreadOverManyBlocks() {
        assertEquals(64, MlaSplitPlan.splits(1, 1, 32768, 132));
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
