package io.expertmesh.bench.kernel;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.ScalarKernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.safetensors.Fp8BlockQuantizer;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Int4Quantizer;
import io.expertmesh.core.tensor.Int8Quantizer;
import io.expertmesh.core.tensor.Fp8Matrix;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Command-line matmul benchmark (no JMH, to keep the build simple). Prints, per shape, dtype, thread count and
 * batch, the time per call, the weight bytes read per second and GFLOP/s, next to the scalar reference at batch 1
 * and a measured copy bandwidth.
 *
 * <p>"cold" cycles through distinct copies of the matrix totalling {@link #COLD_BYTES}, so weights come from DRAM
 * as they do for a model's many experts and layers; "hot" repeats one matrix, which may sit in cache.
 *
 * <pre>
 * mvn -q -pl bench -am compile
 * java --add-modules jdk.incubator.vector -cp bench/target/classes:core/target/classes \
 *     io.expertmesh.bench.kernel.KernelBench [seconds]
 *     [formats, default BF16,F32; FP8 (e4m3, 128x128 block scales); BF16-VEC, FP8-VEC: kept in the Vector
 *      API where they run natively;
 *      I8/32, I8/64, I8/128: int8 with that block; I4/32 ...: int4]
 *     [batches, default 1,8,32]
 * </pre>
 */
public final class KernelBench {
    private static final long COLD_BYTES = 512L << 20;
    /** Expert-sized shapes, then one 64 MB (BF16) matrix, far out of cache even alone. */
    private static final int[][] SHAPES = {{2816, 1024}, {1024, 2816}, {704, 1024}, {8192, 4096}};
    private static final String BATCHES = "1,8,32";
    private static final int[] THREADS = {1, 2};
    /** The species the vector kernels use. */
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private KernelBench() {
    }

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 0.5;
        String[] formats = (args.length > 1 ? args[1] : "BF16,F32").split(",");
        int[] batches = Arrays.stream((args.length > 2 ? args[2] : BATCHES).split(",")).mapToInt(Integer::parseInt)
                .toArray();
        Locale.setDefault(Locale.ROOT);
        System.out.printf("cpus=%d lanes=%d seconds/case=%.2f cold set=%d MB%n",
                Runtime.getRuntime().availableProcessors(), F.length(), seconds, COLD_BYTES >> 20);
        copyBandwidth(seconds);
        ComputePool[] pools = new ComputePool[THREADS.length];
        VectorKernels[] kernels = new VectorKernels[THREADS.length];
        VectorKernels[] vectorApi = new VectorKernels[THREADS.length];
        for (int i = 0; i < THREADS.length; i++) {
            pools[i] = ComputePool.create(THREADS[i]);
            kernels[i] = new VectorKernels(pools[i]);
            vectorApi[i] = new VectorKernels(pools[i], false);
        }
        System.out.println("BF16 kernel: " + VectorKernels.bf16Kernel());
        for (ComputePool p : pools) {
            readBandwidth(p, seconds);
        }
        ScalarKernels scalar = new ScalarKernels();
        System.out.println();
        System.out.println("kernel  dtype  shape        thr batch  set    us/call  us/token    GB/s  GFLOP/s");
        for (String format : formats) {
            boolean vec = format.endsWith("-VEC");
            for (int[] shape : SHAPES) {
                try (Arena arena = Arena.ofShared()) {
                    Matrix[] cold = copies(arena, vec ? format.substring(0, format.length() - 4) : format, shape[0],
                            shape[1]);
                    int maxBatch = Math.max(1, Arrays.stream(batches).max().orElse(1));
                    float[] x = new float[maxBatch * shape[1]];
                    float[] out = new float[maxBatch * shape[0]];
                    Random rnd = new Random(1);
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) rnd.nextGaussian();
                    }
                    report("scalar", scalar, cold, "cold", 1, x, out, seconds);
                    for (VectorKernels k : vec ? vectorApi : kernels) {
                        // In the layout a model gives these kernels (native: BF16 rows interleaved).
                        Matrix[] set = Arrays.stream(cold).map(k::prepare).toArray(Matrix[]::new);
                        Matrix[] hot = {set[0]};
                        for (int batch : batches) {
                            String name = vec ? "vecapi" : "vector";
                            report(name, k, set, "cold", batch, x, out, seconds);
                            report(name, k, hot, "hot", batch, x, out, seconds);
                        }
                    }
                }
            }
        }
        for (ComputePool p : pools) {
            p.close();
        }
    }

    /** MemorySegment.copy of a 512 MB buffer: bytes copied (read) per second; DRAM traffic is twice that. */
    private static void copyBandwidth(double seconds) {
        long size = 512L << 20;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment src = arena.allocate(size, 4096);
            MemorySegment dst = arena.allocate(size, 4096);
            src.fill((byte) 1);
            dst.fill((byte) 2);
            MemorySegment.copy(src, 0, dst, 0, size);
            long start = System.nanoTime();
            int n = 0;
            do {
                MemorySegment.copy(src, 0, dst, 0, size);
                n++;
            } while (System.nanoTime() - start < seconds * 4e9);
            double s = (System.nanoTime() - start) / 1e9;
            System.out.printf("memcpy 512 MB (one thread): %.1f GB/s copied (%.1f GB/s read+write)%n",
                    n * size / s / 1e9, 2 * n * size / s / 1e9);
        }
    }

    /** Vector loads summing a 512 MB buffer, split over the pool: the roofline for a memory-bound matmul. */
    private static void readBandwidth(ComputePool pool, double seconds) {
        long size = 512L << 20;
        int chunks = pool.threads() * 4;
        float[] sink = new float[chunks];
        try (Arena arena = Arena.ofShared()) {
            MemorySegment src = arena.allocate(size, 4096);
            src.fill((byte) 1);
            for (int warm = 0; warm < 2; warm++) {
                sumChunks(pool, src, chunks, sink);
            }
            long start = System.nanoTime();
            int n = 0;
            do {
                sumChunks(pool, src, chunks, sink);
                n++;
            } while (System.nanoTime() - start < seconds * 4e9);
            double s = (System.nanoTime() - start) / 1e9;
            System.out.printf("vector read 512 MB, %d thread(s): %.1f GB/s%n", pool.threads(), n * size / s / 1e9);
        }
    }

    private static void sumChunks(ComputePool pool, MemorySegment src, int chunks, float[] sink) {
        long chunk = src.byteSize() / chunks;
        pool.parallelFor(chunks, t -> {
            var f = F;
            var a0 = FloatVector.zero(f);
            var a1 = a0;
            var a2 = a0;
            var a3 = a0;
            long end = (t + 1) * chunk;
            int vb = f.vectorByteSize();
            for (long off = t * chunk; off < end; off += 4L * vb) {
                a0 = a0.add(FloatVector.fromMemorySegment(f, src, off, ByteOrder.LITTLE_ENDIAN));
                a1 = a1.add(FloatVector.fromMemorySegment(f, src, off + vb, ByteOrder.LITTLE_ENDIAN));
                a2 = a2.add(FloatVector.fromMemorySegment(f, src, off + 2L * vb, ByteOrder.LITTLE_ENDIAN));
                a3 = a3.add(FloatVector.fromMemorySegment(f, src, off + 3L * vb, ByteOrder.LITTLE_ENDIAN));
            }
            sink[t] = a0.add(a1).add(a2.add(a3)).lane(0);
        });
    }

    /** Distinct copies of one random matrix, totalling at least {@link #COLD_BYTES}. */
    private static Matrix[] copies(Arena arena, String format, int rows, int cols) {
        if (format.equals("FP8")) {
            // DeepSeek-V3's format: e4m3 with 128x128 block scales, quantized as its checkpoints are.
            Fp8BlockQuantizer.Quantized q = Fp8BlockQuantizer.quantize(copies(arena, "F32", rows, cols)[0], arena);
            Matrix first = Fp8Matrix.of("bench0", rows, cols, q.fp8(), q.scaleInv(), arena);
            int count = (int) Math.max(2, (COLD_BYTES + first.byteSize() - 1) / first.byteSize());
            Matrix[] m = new Matrix[count];
            for (int i = 0; i < count; i++) {
                m[i] = i == 0 ? first : Fp8Matrix.of("bench" + i, rows, cols,
                        arena.allocate(q.fp8().byteSize(), 64).copyFrom(q.fp8()), q.scaleInv(), arena);
            }
            return m;
        }
        if (format.startsWith("I8/") || format.startsWith("I4/")) {
            int block = Integer.parseInt(format.substring(3));
            Matrix bf16 = copies(arena, "BF16", rows, cols)[0];
            Matrix q = format.startsWith("I8/") ? Int8Quantizer.quantize(bf16, block, arena)
                    : Int4Quantizer.quantize(bf16, block, arena);
            int count = (int) Math.max(2, (COLD_BYTES + q.byteSize() - 1) / q.byteSize());
            Matrix[] m = new Matrix[count];
            for (int i = 0; i < count; i++) {
                MemorySegment d = i == 0 ? q.data() : arena.allocate(q.data().byteSize(), 64).copyFrom(q.data());
                MemorySegment s = i == 0 ? q.scales() : arena.allocate(q.scales().byteSize(), 64)
                        .copyFrom(q.scales());
                m[i] = new Matrix("bench" + i, q.dtype(), rows, cols, d, s);
            }
            return m;
        }
        DType dtype = DType.valueOf(format);
        long bytes = (long) rows * cols * dtype.bytes();
        int count = (int) Math.max(2, (COLD_BYTES + bytes - 1) / bytes);
        MemorySegment first = arena.allocate(bytes, 64);
        Random rnd = new Random(rows * 31L + cols);
        for (long i = 0; i < (long) rows * cols; i++) {
            float v = (float) (rnd.nextGaussian() * 0.05);
            if (dtype == DType.BF16) {
                first.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Bf16.fromFloat(v));
            } else {
                first.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
            }
        }
        Matrix[] m = new Matrix[count];
        for (int i = 0; i < count; i++) {
            MemorySegment seg = i == 0 ? first : arena.allocate(bytes, 64);
            if (i > 0) {
                MemorySegment.copy(first, 0, seg, 0, bytes);
            }
            m[i] = new Matrix("bench" + i, dtype, rows, cols, seg);
        }
        return m;
    }

    private static void report(String name, Kernels k, Matrix[] set, String setName, int batch, float[] x,
                               float[] out, double seconds) {
        Matrix w0 = set[0];
        // Warm-up: JIT compilation, and page faults on every copy.
        run(k, set, batch, x, out, Math.max(seconds / 2, 0.2));
        double[] r = run(k, set, batch, x, out, seconds);
        double perCall = r[0] / r[1];
        double bytes = w0.byteSize();
        double flops = 2.0 * w0.rows() * w0.cols() * batch;
        System.out.printf("%-7s %-6s %4dx%-7d %3d %5d %-5s %9.1f %9.2f %7.1f %8.1f%n",
                name, w0.dtype().blockQuantized() ? w0.dtype() + "/" + w0.block() : w0.dtype(), w0.rows(),
                w0.cols(), k.pool().threads(), batch, setName,
                perCall * 1e6, perCall * 1e6 / batch, bytes / perCall / 1e9, flops / perCall / 1e9);
    }

    /** Returns {seconds, calls}. */
    private static double[] run(Kernels k, Matrix[] set, int batch, float[] x, float[] out, double seconds) {
        long start = System.nanoTime();
        long deadline = start + (long) (seconds * 1e9);
        long calls = 0;
        int i = 0;
        long now;
        do {
            k.matmul(set[i], x, 0, out, 0, batch);
            i = i + 1 == set.length ? 0 : i + 1;
            calls++;
            now = System.nanoTime();
        } while (now < deadline || calls < 3);
        return new double[] {(now - start) / 1e9, calls};
    }
}
