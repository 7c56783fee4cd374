package io.expertmesh.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The kernel modules packaged in this jar. The Maven profile {@code nvcc} compiles {@code src/main/cuda/*.cu} to
 * {@code io/expertmesh/cuda/ptx/NAME.sm_90.fatbin} (sm_90 machine code plus compute_90 PTX), {@code NAME.sm_90.ptx}
 * (the same PTX as text, for the kernels' names and parameter types) and {@code NAME.sm_80.ptx} and lists the
 * names in {@code index.txt}; a build without nvcc has no index, and then this catalog is empty and says so.
 */
public final class CudaKernelCatalog {
    static final String DIR = "/io/expertmesh/cuda/ptx/";
    /** The modules the Java launchers need; a build whose index lacks one is incomplete. */
    public static final List<String> REQUIRED = List.of("elementwise", "linear", "mla_decode", "attention", "forward");

    private static final CudaKernelCatalog INSTANCE = load();

    private final List<String> modules;
    private final String compiler;

    /** A catalog of the given modules (tests: the state of a build without nvcc). */
    static CudaKernelCatalog of(List<String> modules, String compiler) {
        return new CudaKernelCatalog(List.copyOf(modules), compiler);
    }

    private CudaKernelCatalog(List<String> modules, String compiler) {
        this.modules = modules;
        this.compiler = compiler;
    }

    public static CudaKernelCatalog get() {
        return INSTANCE;
    }

    /** Module names (file names without {@code .cu}), empty when the jar was built without nvcc. */
    public List<String> modules() {
        return modules;
    }

    public boolean hasKernels() {
        return modules.containsAll(REQUIRED);
    }

    /** One line for logs and errors. */
    public String describe() {
        if (modules.isEmpty()) {
            return "no GPU kernels in this build (built without nvcc; build with nvcc on PATH or -Pnvcc)";
        }
        if (!hasKernels()) {
            return "incomplete GPU kernels in this build: have " + modules + ", need " + REQUIRED;
        }
        return "GPU kernels " + modules + " (" + compiler + ")";
    }

    /** The PTX text of a module for a target ({@code sm_90} or {@code sm_80}), NUL-terminated for the driver. */
    public byte[] ptx(String module, String target) {
        String path = DIR + module + "." + target + ".ptx";
        try (InputStream in = CudaKernelCatalog.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("missing PTX resource " + path + "; " + describe());
            }
            byte[] text = in.readAllBytes();
            byte[] z = new byte[text.length + 1];
            System.arraycopy(text, 0, z, 0, text.length);
            return z;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The fatbin of a module (sm_90 SASS plus compute_90 PTX), or null when the jar has none (built by an older
     * script): then the driver JIT-compiles {@link #ptx} instead.
     */
    public byte[] fatbin(String module) {
        try (InputStream in = CudaKernelCatalog.class.getResourceAsStream(DIR + module + ".sm_90.fatbin")) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static CudaKernelCatalog load() {
        try (InputStream in = CudaKernelCatalog.class.getResourceAsStream(DIR + "index.txt")) {
            if (in == null) {
                return new CudaKernelCatalog(List.of(), "none");
            }
            List<String> lines = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().map(String::strip)
                    .filter(l -> !l.isEmpty()).toList();
            String compiler = lines.stream().filter(l -> l.startsWith("#")).map(l -> l.substring(1).strip())
                    .findFirst().orElse("nvcc");
            return new CudaKernelCatalog(lines.stream().filter(l -> !l.startsWith("#")).toList(), compiler);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
