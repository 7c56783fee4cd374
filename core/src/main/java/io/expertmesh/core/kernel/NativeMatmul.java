package io.expertmesh.core.kernel;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Rows of a BF16, FP8, int8 or int4 matmul in native code with AVX512-BF16 ({@code vdpbf16ps}), through the FFM API:
 * {@code src/main/c/matmul.c}, built into the jar by the {@code native} Maven profile where gcc is installed.
 *
 * <p>Why: the Vector API cannot emit {@code vdpbf16ps}; {@link Bf16Matmul} and {@link Fp8Matmul} widen every
 * weight to a float and are bound by their loads and conversions, at about half of what this code does on the
 * same core (compute-bound products: prefill and batched decode). Each float activation is split into two bf16
 * halves ({@code hi + lo}), so the result is within about 2^-16 of |x| per activation of the float product, not
 * rounded to bf16 activations as llama.cpp does. FP8 and int8 weights convert exactly to bf16; an FP8 block
 * scale multiplies the activations, int8's block scales the partial sums. int4 is W4A8 (llama.cpp's Q4_0 × Q8_0):
 * integer dot products ({@code vpdpbusd}, AVX512-VNNI) against activations quantized to int8 per 32 columns
 * ({@link Int8Activations}), where the Java kernel keeps float activations ({@link #int4} says which int4 shapes
 * run here; {@link ScalarKernels#forNativeKernels} is the reference of both).
 *
 * <p>Used for every BF16, FP8 and int8 product, and int4 of the shapes {@link #int4} accepts, when the library
 * loads, the CPU has AVX512-BF16, AVX512-VBMI (the byte lookups) and AVX512-VNNI, and
 * {@code -Dexpertmesh.nativeKernels=false} is not set; otherwise the Java kernels. A matrix always takes one of
 * the two, so its bits never depend on the batch (the C file says how). The two give different bits, so the
 * nodes of a cluster that must agree bit for bit (router and workers) should run on the same CPU kind; workers
 * report theirs and the router warns otherwise.
 *
 * <p>The downcall is {@linkplain Linker.Option#critical(boolean) critical}: it reads the Java arrays in place (no
 * copy), and the GC waits while it runs: a decode product takes microseconds, a long prefill product longer (how
 * much that delays a collection was not measured).
 */
final class NativeMatmul {
    /** Where the library sits in the jar, beside this class (build-native.sh puts it there). */
    static final String RESOURCE = "native/linux-x86_64/libexpertmesh-kernels.so";
    private static final MethodHandle BF16_ROWS;
    private static final MethodHandle FP8_ROWS;
    private static final MethodHandle INT4_ROWS;
    private static final MethodHandle INT8_ROWS;
    private static final MethodHandle ALLOC_WEIGHTS;
    private static final MethodHandle FREE_WEIGHTS;
    private static final MethodHandle WEAVE_ROWS;
    private static final String STATUS;

    static {
        MethodHandle bf16 = null;
        MethodHandle fp8 = null;
        MethodHandle int4 = null;
        MethodHandle int8 = null;
        MethodHandle alloc = null;
        MethodHandle free = null;
        MethodHandle interleave = null;
        String status;
        try {
            status = unavailableReason();
            if (status == null) {
                Path file = extractLibrary();
                SymbolLookup lib;
                try {
                    lib = SymbolLookup.libraryLookup(file, Arena.global());
                } finally {
                    // Mapped now (or failed): unlink at once, so a killed process leaves no copy in the temp folder.
                    Files.deleteIfExists(file);
                }
                Linker linker = Linker.nativeLinker();
                MethodHandle supported = linker.downcallHandle(lib.findOrThrow("em_supported"),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT));
                if ((int) supported.invokeExact() == 0) {
                    status = "Vector API (this CPU lacks AVX512-BF16, AVX512-VBMI or AVX512-VNNI)";
                } else {
                    ValueLayout a = ValueLayout.ADDRESS;
                    ValueLayout n = ValueLayout.JAVA_LONG;
                    bf16 = linker.downcallHandle(lib.findOrThrow("em_bf16_rows"),
                            FunctionDescriptor.of(ValueLayout.JAVA_INT, a, n, n, n, n, a, n, a, n),
                            Linker.Option.critical(true));
                    fp8 = linker.downcallHandle(lib.findOrThrow("em_fp8_rows"),
                            FunctionDescriptor.of(ValueLayout.JAVA_INT, a, a, n, n, n, n, a, n, a, n),
                            Linker.Option.critical(true));
                    int4 = linker.downcallHandle(lib.findOrThrow("em_int4_rows"),
                            FunctionDescriptor.of(ValueLayout.JAVA_INT, a, a, n, n, n, n, a, n, a),
                            Linker.Option.critical(true));
                    int8 = linker.downcallHandle(lib.findOrThrow("em_int8_rows"),
                            FunctionDescriptor.of(ValueLayout.JAVA_INT, a, a, n, n, n, n, n, a, n, a),
                            Linker.Option.critical(true));
                    alloc = linker.downcallHandle(lib.findOrThrow("em_alloc_weights"), FunctionDescriptor.of(a, n));
                    free = linker.downcallHandle(lib.findOrThrow("em_free_weights"), FunctionDescriptor.ofVoid(a));
                    interleave = linker.downcallHandle(lib.findOrThrow("em_weave_rows"),
                            FunctionDescriptor.ofVoid(a, n, n, n, n, n, a), Linker.Option.critical(true));
                    status = "native AVX512-BF16";
                }
            }
        } catch (Throwable e) {
            // A library that will not load (missing glibc symbol, noexec temp directory, ...) leaves the Java path.
            bf16 = null;
            fp8 = null;
            int4 = null;
            int8 = null;
            alloc = null;
            free = null;
            interleave = null;
            status = "Vector API (native kernels did not load: " + e + ")";
        }
        BF16_ROWS = bf16;
        FP8_ROWS = fp8;
        INT4_ROWS = int4;
        INT8_ROWS = int8;
        ALLOC_WEIGHTS = alloc;
        FREE_WEIGHTS = free;
        WEAVE_ROWS = interleave;
        STATUS = status;
    }

    private NativeMatmul() {
    }

    /** Whether BF16, FP8, int8 and int4 products can run here rather than in the Java kernels. */
    static boolean available() {
        return BF16_ROWS != null;
    }

    /** Which kernels this process uses for BF16, FP8, int8 and int4, and why not the native ones when it does not. */
    static String status() {
        return STATUS;
    }

    /**
     * {@code out[outOff + b*rows + r] = Σ_c w[r][c] · x[xOff + b*cols + c]} for rows {@code [from, to)} and
     * {@code b < batch}, BF16 weights, on the calling thread. Only when {@link #available()}.
     */
    static void bf16Rows(MemorySegment w, int rows, int cols, int from, int to, float[] x, int xOff, float[] out,
                         int outOff, int batch, boolean interleaved) {
        int rc;
        try {
            rc = (int) BF16_ROWS.invokeExact(w, (long) rows, (long) cols, (long) from, (long) to,
                    MemorySegment.ofArray(x).asSlice(4L * xOff), (long) batch,
                    MemorySegment.ofArray(out).asSlice(4L * outOff), interleaved ? 1L : 0L);
        } catch (Throwable e) {
            throw new IllegalStateException("native BF16 matmul failed", e);
        }
        check(rc);
    }

    /**
     * The same for FP8 (e4m3) weights with their {@link io.expertmesh.core.tensor.Matrix} scale grid (each the
     * checkpoint's {@code weight_scale_inv} times {@link io.expertmesh.core.tensor.Fp8E4M3#SCALE_FOLD}, which the
     * native code takes back out: its weights are the e4m3 values themselves).
     */
    static void fp8Rows(MemorySegment w, MemorySegment scales, int rows, int cols, int from, int to, float[] x,
                        int xOff, float[] out, int outOff, int batch, boolean interleaved) {
        int rc;
        try {
            rc = (int) FP8_ROWS.invokeExact(w, scales, (long) rows, (long) cols, (long) from, (long) to,
                    MemorySegment.ofArray(x).asSlice(4L * xOff), (long) batch,
                    MemorySegment.ofArray(out).asSlice(4L * outOff), interleaved ? 1L : 0L);
        } catch (Throwable e) {
            throw new IllegalStateException("native FP8 matmul failed", e);
        }
        check(rc);
    }

    /**
     * Whether an int4 matrix of this shape runs here: Q4_0's block of 32 (any K, a last partial 128-column group
     * included) and whole quads of interleaved rows ({@link io.expertmesh.core.tensor.Int4Quantizer}), as in real
     * models; others stay in {@link Int4Matmul}, chosen by shape so that a matrix always takes the same path.
     */
    static boolean int4(int rows, int cols, int block) {
        return INT4_ROWS != null && block == 32 && cols % 32 == 0 && rows % 4 == 0;
    }

    /** The same for int4 weights ({@link #int4} true) with their F16 block scales. */
    static void int4Rows(MemorySegment w, MemorySegment scales, int rows, int cols, int from, int to, float[] x,
                         int xOff, float[] out, int outOff, int batch) {
        scaledRows(INT4_ROWS, "int4", w, scales, rows, cols, from, to, x, xOff, out, outOff, batch);
    }

    /**
     * Whether an int8 matrix with this block runs here: any block {@link io.expertmesh.core.tensor.Int8Quantizer}
     * makes (a positive multiple of 32 dividing the columns), checked again because the kernel relies on it.
     */
    static boolean int8(int cols, int block) {
        return INT8_ROWS != null && block > 0 && block % 32 == 0 && cols % block == 0;
    }

    /** The same for int8 weights ({@link #int8} true) with their F32 block scales. */
    static void int8Rows(MemorySegment w, MemorySegment scales, int rows, int cols, int block, int from, int to,
                         float[] x, int xOff, float[] out, int outOff, int batch) {
        int rc;
        try {
            rc = (int) INT8_ROWS.invokeExact(w, scales, (long) rows, (long) cols, (long) block, (long) from,
                    (long) to, MemorySegment.ofArray(x).asSlice(4L * xOff), (long) batch,
                    MemorySegment.ofArray(out).asSlice(4L * outOff));
        } catch (Throwable e) {
            throw new IllegalStateException("native int8 matmul failed", e);
        }
        check(rc);
    }

    /** int4's native {@code em_int4_rows} (the signature of a format with block scales and one layout). */
    private static void scaledRows(MethodHandle rowsHandle, String format, MemorySegment w, MemorySegment scales,
                                   int rows, int cols, int from, int to, float[] x, int xOff, float[] out,
                                   int outOff, int batch) {
        int rc;
        try {
            rc = (int) rowsHandle.invokeExact(w, scales, (long) rows, (long) cols, (long) from, (long) to,
                    MemorySegment.ofArray(x).asSlice(4L * xOff), (long) batch,
                    MemorySegment.ofArray(out).asSlice(4L * outOff));
        } catch (Throwable e) {
            throw new IllegalStateException("native " + format + " matmul failed", e);
        }
        check(rc);
    }

    /**
     * {@code bytes} of native memory for weights, untouched (the threads that copy into it fault it in, see
     * {@link #weaveRows} and {@code weights.c}), freed when {@code arena} closes. Only when
     * {@link #available()}.
     */
    static MemorySegment allocateWeights(long bytes, Arena arena) {
        MemorySegment p;
        try {
            p = (MemorySegment) ALLOC_WEIGHTS.invokeExact(bytes);
        } catch (Throwable e) {
            throw new IllegalStateException("native weight allocation failed", e);
        }
        if (p.equals(MemorySegment.NULL)) {
            throw new OutOfMemoryError("no memory for " + bytes + " bytes of interleaved weights");
        }
        return p.reinterpret(bytes, arena, NativeMatmul::freeWeights);
    }

    private static void freeWeights(MemorySegment p) {
        try {
            FREE_WEIGHTS.invokeExact(p);
        } catch (Throwable e) {
            throw new IllegalStateException("native weight free failed", e);
        }
    }

    /**
     * Rows {@code [from, to)} (multiples of {@code groupRows}, or {@code rows}) of {@code src}, plain rows of
     * {@code rowBytes}, into {@code dst} in {@link io.expertmesh.core.tensor.InterleavedRows}'s layout (woven
     * {@code groupRows} at a time), on the calling thread. Only when {@link #available()}.
     */
    static void weaveRows(MemorySegment src, int rows, long rowBytes, int groupRows, int from, int to,
                          MemorySegment dst) {
        try {
            WEAVE_ROWS.invokeExact(src, (long) rows, rowBytes, (long) groupRows, (long) from, (long) to, dst);
        } catch (Throwable e) {
            throw new IllegalStateException("native row weave failed", e);
        }
    }

    private static void check(int rc) {
        if (rc != 0) {
            throw new OutOfMemoryError("native matmul: no memory for its buffers");
        }
    }

    private static String unavailableReason() {
        if (!Boolean.parseBoolean(System.getProperty("expertmesh.nativeKernels", "true"))) {
            return "Vector API (-Dexpertmesh.nativeKernels=false)";
        }
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.startsWith("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return "Vector API (native kernels are built for linux x86-64 only, this is " + os + " " + arch + ")";
        }
        if (NativeMatmul.class.getResource(RESOURCE) == null) {
            return "Vector API (this build has no native kernels: gcc was not found at build time)";
        }
        return null;
    }

    /** Copies the library out of the jar into a temporary file that the loader can map (the caller unlinks it). */
    private static Path extractLibrary() throws IOException {
        Path file = Files.createTempFile("expertmesh-kernels", ".so");
        try (InputStream in = NativeMatmul.class.getResourceAsStream(RESOURCE)) {
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(file);
            throw e;
        }
        return file;
    }
}
