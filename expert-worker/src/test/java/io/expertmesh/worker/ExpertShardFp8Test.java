package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.ScalarKernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.LocalExperts;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A worker serving an FP8 checkpoint keeps its experts FP8 (1 byte per weight, mapped) and runs them natively. */
class ExpertShardFp8Test {
    @TempDir
    Path tmp;

    @Test
    void fp8Checkpoint_expertsStayFp8_andRunAsTheScalarReference() {
        Path fp8 = tmp.resolve("fp8");
        Fp8BlockQuantizer.quantize(WorkerFixture.MODEL, fp8);
        try (ExpertShard shard = ExpertShard.open(fp8); ComputePool pool = ComputePool.create(2)) {
            assertTrue(shard.load(1, 3));
            assertTrue(shard.load(1, 5));
            Mlp e = shard.expert(1, 3);
            for (Matrix m : new Matrix[] {e.gate(), e.up(), e.down()}) {
                assertEquals(DType.F8_E4M3, m.dtype(), m.name());
                assertEquals((long) m.rows() * m.cols() + Float.BYTES, m.byteSize(), m.name());
            }
            int tokens = 3;
            int h = WorkerFixture.HIDDEN;
            float[] x = new float[tokens * h];
            Random rnd = new Random(1);
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            int[] offsets = {0, 1, 3, 4};
            int[] ids = {3, 3, 5, 5};
            float[] weights = {0.5f, 1f, 2f, 0.25f};
            float[] out = new float[tokens * h];
            shard.runner(1).run(x, tokens, offsets, ids, weights, out, StepContext.standalone(new VectorKernels(pool)));
            Mlp[] held = new Mlp[WorkerFixture.EXPERTS];
            held[3] = shard.expert(1, 3);
            held[5] = shard.expert(1, 5);
            float[] ref = new float[tokens * h];
            new LocalExperts(held, h).run(x, tokens, offsets, ids, weights, ref,
                    StepContext.standalone(new ScalarKernels()));
            for (int i = 0; i < out.length; i++) {
                assertEquals(ref[i], out[i], 1e-4 * (1 + Math.abs(ref[i])), "element " + i);
            }
        }
    }
}
