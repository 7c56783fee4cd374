package io.expertmesh.bench.model;

import io.expertmesh.core.kernel.ComputePool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Measures the machine's memory read bandwidth: a vector sum over 1 GiB split across the pool's threads. */
public final class MemoryBandwidth {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private MemoryBandwidth() {
    }

    public static double measureReadGBs(ComputePool pool) {
        long bytes = 1L << 30;
        try (Arena arena = Arena.ofShared()) { // shared: the pool's threads read it
            MemorySegment seg = arena.allocate(bytes, 64);
            seg.fill((byte) 1);
            int tasks = pool.threads() * 8;
            long chunk = bytes / tasks;
            double[] sink = new double[tasks];
            double best = 0;
            for (int rep = 0; rep < 4; rep++) {
                long s = System.nanoTime();
                pool.parallelFor(tasks, i -> sink[i] = sum(seg, i * chunk, chunk));
                double gbs = bytes / ((System.nanoTime() - s) / 1e9) / 1e9;
                best = Math.max(best, gbs);
            }
            return best;
        }
    }

    private static double sum(MemorySegment seg, long from, long len) {
        FloatVector a = FloatVector.zero(S);
        FloatVector b = FloatVector.zero(S);
        long step = S.vectorByteSize();
        for (long o = from; o + 2 * step <= from + len; o += 2 * step) {
            a = a.add(FloatVector.fromMemorySegment(S, seg, o, ByteOrder.LITTLE_ENDIAN));
            b = b.add(FloatVector.fromMemorySegment(S, seg, o + step, ByteOrder.LITTLE_ENDIAN));
        }
        return a.add(b).reduceLanes(VectorOperators.ADD);
    }
}
