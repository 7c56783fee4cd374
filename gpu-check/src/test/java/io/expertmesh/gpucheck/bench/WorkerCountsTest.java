package io.expertmesh.gpucheck.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.cuda.DeviceCounts;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One RunExperts call on a worker's device experts: the choices grouped on the device, so the same launches
 * whatever the number of tokens and of active experts, three uploads, one download and one wait.
 */
class WorkerCountsTest {
    @ParameterizedTest
    @ValueSource(strings = {"bench", "v3"})
    void runExpertsCall_launchesIndependentOfTokensAndExperts_oneWait(String shape, @TempDir Path dir) throws Exception {
        SyntheticModels.writeModel(StepCounts.config(shape), 5, dir);
        WorkerCounts.Call one = WorkerCounts.runExperts(dir, 1, 11);
        WorkerCounts.Call many = WorkerCounts.runExperts(dir, 64, 11);
        System.out.println("worker counts, " + shape + ", 1 token: " + one + "; 64 tokens: " + many);
        for (WorkerCounts.Call c : new WorkerCounts.Call[]{one, many}) {
            assertEquals(new DeviceCounts(7, 3, 1, 1), c.counts(), c.toString());
        }
        assertTrue(many.activeExperts() > one.activeExperts(), "the larger call must reach more experts");
    }
}
