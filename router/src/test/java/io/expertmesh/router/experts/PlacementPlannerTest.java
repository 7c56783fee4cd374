package io.expertmesh.router.experts;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PlacementPlannerTest {
    static final List<String> W3 = List.of("a:1", "b:1", "c:1");
    /** 4 layers, MoE layers 1..3, 16 experts. */
    static final ExpertPlacement SHAPE = ExpertPlacement.empty(4, new int[]{1, 2, 3}, 16);

    @Test
    void noLoad_contiguousRangesAlignedWithGroups() {
        ExpertPlacement p = new PlacementPlanner(4).plan(SHAPE, List.of("a:1", "b:1"), null, 0);
        // 4 groups of 4 experts on 2 workers: groups 0-1 on a, 2-3 on b.
        for (int e = 0; e < 16; e++) {
            assertArrayEquals(new String[]{e < 8 ? "a:1" : "b:1"}, p.replicas(1, e), "expert " + e);
        }
        assertTrue(p.unplaced().isEmpty());
        assertEquals(3 * 16, p.replicaCount());
        assertEquals(1, p.epoch());
    }

    @Test
    void everyExpertOnce_evenlySpread_withoutGroups() {
        ExpertPlacement p = new PlacementPlanner(1).plan(SHAPE, W3, null, 0);
        Map<String, Map<Integer, int[]>> by = p.byWorker();
        for (String w : W3) {
            int n = by.get(w).get(2).length;
            assertTrue(n == 5 || n == 6, w + " holds " + n);
        }
    }

    @Test
    void redundancy_replicatesTheHottestExperts_onOtherWorkers() {
        long[][] load = new long[4][];
        for (int l = 1; l < 4; l++) {
            load[l] = new long[16];
            Arrays.fill(load[l], 10);
            load[l][3] = 1000; // hot
            load[l][12] = 500; // warm
        }
        ExpertPlacement p = new PlacementPlanner(1).plan(SHAPE, W3, load, 2);
        for (int l = 1; l < 4; l++) {
            assertTrue(p.replicas(l, 3).length >= 2, "hot expert replicated");
            assertEquals(p.replicas(l, 3).length, Arrays.stream(p.replicas(l, 3)).distinct().count(),
                    "replicas on distinct workers");
            double max = Arrays.stream(PlacementPlanner.workerLoads(p, l, load[l], W3)).max().orElseThrow();
            assertTrue(max < 1000, "no worker carries the whole hot expert: " + max);
        }
        assertEquals(3 * 18, p.replicaCount());
    }

    @Test
    void measuredLoad_lowersWorkerImbalanceOfASkewedLoad() {
        long[][] load = new long[4][];
        for (int l = 1; l < 4; l++) {
            load[l] = new long[16];
            for (int e = 0; e < 16; e++) {
                load[l][e] = e < 4 ? 1000 : 10; // experts 0-3 hot: all on one worker in contiguous ranges
            }
        }
        PlacementPlanner planner = new PlacementPlanner(1);
        ExpertPlacement even = planner.plan(SHAPE, W3, null, 0);
        ExpertPlacement balanced = planner.plan(even, W3, load, 3);
        double before = PlanManager.meanImbalance(even, load, W3);
        double after = PlanManager.meanImbalance(balanced, load, W3);
        assertTrue(before > 2.5, "contiguous placement of a skewed load: " + before);
        assertTrue(after < 1.3, "after rebalancing: " + after);
        System.out.printf("skewed load: worker imbalance %.3f contiguous, %.3f rebalanced%n", before, after);
    }

    @Test
    void withoutAWorker_itsExpertsAreReassignedToLiveOnes() {
        PlacementPlanner planner = new PlacementPlanner(1);
        ExpertPlacement p = planner.plan(SHAPE, W3, null, 0);
        ExpertPlacement gone = p.without("b:1");
        assertTrue(!gone.unplaced().isEmpty());
        ExpertPlacement fixed = planner.reassignUnplaced(gone, List.of("a:1", "c:1"), null);
        assertTrue(fixed.unplaced().isEmpty());
        assertTrue(!fixed.byWorker().containsKey("b:1"));
        // Experts that were on live workers stay where they were.
        for (int e = 0; e < 16; e++) {
            if (!p.replicas(1, e)[0].equals("b:1")) {
                assertArrayEquals(p.replicas(1, e), fixed.replicas(1, e));
            }
        }
        assertTrue(fixed.epoch() > p.epoch());
    }

    @Test
    void badArguments() {
        PlacementPlanner planner = new PlacementPlanner(1);
        assertThrows(IllegalArgumentException.class, () -> planner.plan(SHAPE, List.of(), null, 0));
        assertThrows(IllegalArgumentException.class, () -> planner.plan(SHAPE, W3, null, -1));
        assertThrows(IllegalArgumentException.class, () -> ExpertClusterConfig.of(List.of("nohost"), 0));
        assertThrows(IllegalArgumentException.class, () -> ExpertClusterConfig.of(List.of("h:99999"), 0));
        assertThrows(IllegalArgumentException.class, () -> ExpertClusterConfig.of(List.of("h:1", "h:1"), 0));
    }
}
