package io.expertmesh.gpucheck.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.cuda.DeviceCounts;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A decode step's host-side work on the CPU model: one wait (for the logits) whatever the batch and the number of
 * experts, and launches that do not grow with the batch (the routed experts run as grouped launches, not per
 * active expert).
 */
class StepCountsTest {
    @ParameterizedTest
    @ValueSource(strings = {"bench", "v3"})
    void decodeStep_oneWait_launchesIndependentOfBatch(String shape, @TempDir Path dir) throws Exception {
        SyntheticModels.writeModel(StepCounts.config(shape), 5, dir);
        DeviceCounts one = StepCounts.decodeStep(dir, 1);
        DeviceCounts many = StepCounts.decodeStep(dir, 64);
        System.out.println("step counts, " + shape + " topology, batch 1: " + one + "; batch 64: " + many);
        assertEquals(1, one.syncs(), one.toString());
        assertEquals(1, many.syncs(), many.toString());
        assertEquals(one.launches(), many.launches(), "launches per step must not grow with the batch");
        assertEquals(1, one.copiesToHost(), "only the logits come down");
    }
}
