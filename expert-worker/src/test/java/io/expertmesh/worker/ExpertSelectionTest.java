package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ExpertSelectionTest {

    @Test
    void parse_forms_resolveToExpertIds() {
        assertArrayEquals(new int[]{0, 1, 2, 3}, ExpertSelection.parse("all").resolve(4));
        assertArrayEquals(new int[]{0, 1, 2, 3, 4, 5, 6, 7}, ExpertSelection.parse("0-7").resolve(16));
        assertArrayEquals(new int[]{1, 2, 5, 9}, ExpertSelection.parse("9,1-2,5").resolve(16));
        assertArrayEquals(new int[]{1, 4, 7}, ExpertSelection.parse("shard:1/3").resolve(8));
        assertArrayEquals(new int[0], ExpertSelection.parse("none").resolve(8));
    }

    @Test
    void parse_badSpecs_throwWithTheReason() {
        for (String bad : new String[]{"", "x", "3-1", "shard:2/2", "shard:1", "-1", "1,,2"}) {
            assertThrows(IllegalArgumentException.class, () -> ExpertSelection.parse(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> ExpertSelection.parse("0-8").resolve(8));
    }
}
