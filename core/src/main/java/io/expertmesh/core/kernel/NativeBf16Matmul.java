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
 * Rows of a BF16 matmul in native code with AVX512-BF16 ({@code vdpbf16ps}), through the FFM API:
 * {@code src/main/c/bf16_matmul.c}, built into the jar by the {@code native} Maven profile where gcc is installed.
 *
 * <p>Why: the Vector API cannot emit {@code vdpbf16ps}; {@link Bf16Matmul} widens every weight to a float and is
 * bound by its loads, at about half of what this kernel does on the same core (compute-bound products: prefill and
 * batched decode). Each float activation is split into two bf16 halves ({@code hi + lo}), so the result is within
 * about 2^-16 of |x| per activation of the float product, not rounded to bf16 activations as llama.cpp does.
 *
 * <p>Used for every BF16 product when the library loads and the CPU has AVX512-BF16, and not disabled with
 * {@code -Dexpertmesh.nativeKernels=false}; otherwise {@link Bf16Matmul}. One process always uses one of the two,
 * so its bits never depend on the batch (the C file says how). The two give different bits, so the nodes of a
 * cluster that must agree bit for bit (router and workers) should run on the same CPU kind.
 *
 * <p>The downcall is {@linkplain Linker.Option#critical(boolean) critical}: it reads the Java arrays in place (no
 * copy) and is short (a product of a few MB of weights), so holding off the GC for its duration is cheap.
 */
final class NativeBf16Matmul {
    private static final String RESOURCE = "native/linux-x86_64/libexpertmesh-kernels.so";
    private static final MethodHandle ROWS;
    private static final String STATUS;

    static {
        MethodHandle rows = null;
        String status;
        try {
            status = unavailableReason();
            if (status == null) {
                SymbolLookup lib = SymbolLookup.libraryLookup(extractLibrary(), Arena.global());
                Linker linker = Linker.nativeLinker();
                MethodHandle supported = linker.downcallHandle(lib.findOrThrow("em_bf16_supported"),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT));
                if ((int) supported.invokeExact() == 0) {
                    status = "Vector API (this CPU has no AVX512-BF16)";
                } else {
                    rows = linker.downcallHandle(lib.findOrThrow("em_bf16_rows"),
                            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
                            Linker.Option.critical(true));
                    status = "native AVX512-BF16";
                }
            }
        } catch (Throwable e) {
            // A library that will not load (missing glibc symbol, noexec temp directory, ...) leaves the Java path.
            rows = null;
            status = "Vector API (native kernels did not load: " + e + ")";
        }
        ROWS = rows;
        STATUS = status;
    }

    private NativeBf16Matmul() {
    }

    /** Whether BF16 products run here rather than in {@link Bf16Matmul}. */
    static boolean available() {
        return ROWS != null;
    }

    /** Which BF16 kernel this process uses, and why not the native one when it does not. */
    static String status() {
        return STATUS;
    }

    /**
     * {@code out[outOff + b*rows + r] = Σ_c w[r][c] · x[xOff + b*cols + c]} for rows {@code [from, to)} and
     * {@code b < batch}, on the calling thread. Only when {@link #available()}.
     */
    static void rows(MemorySegment w, int rows, int cols, int from, int to, float[] x, int xOff, float[] out,
                     int outOff, int batch) {
        int rc;
        try {
            rc = (int) ROWS.invokeExact(w, (long) rows, (long) cols, (long) from, (long) to,
                    MemorySegment.ofArray(x).asSlice(4L * xOff), (long) batch,
                    MemorySegment.ofArray(out).asSlice(4L * outOff));
        } catch (Throwable e) {
            throw new IllegalStateException("native BF16 matmul failed", e);
        }
        if (rc != 0) {
            throw new OutOfMemoryError("native BF16 matmul: no memory for the activation buffer");
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
        if (NativeBf16Matmul.class.getResource(RESOURCE) == null) {
            return "Vector API (this build has no native kernels: gcc was not found at build time)";
        }
        return null;
    }

    /** Copies the library out of the jar into a temporary file (removed at exit) that the loader can map. */
    private static Path extractLibrary() throws IOException {
        Path file = Files.createTempFile("expertmesh-kernels", ".so");
        file.toFile().deleteOnExit();
        try (InputStream in = NativeBf16Matmul.class.getResourceAsStream(RESOURCE)) {
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        }
        return file;
    }
}
