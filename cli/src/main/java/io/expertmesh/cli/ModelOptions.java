package io.expertmesh.cli;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.ScalarKernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.synthetic.SyntheticModels;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/** Options shared by commands that load a model: which directory, how many threads, which kernels. */
final class ModelOptions {
    private static final Logger LOG = LoggerFactory.getLogger(ModelOptions.class);

    @Option(names = "--model", paramLabel = "DIR",
            description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.json). "
                    + "Default: the built-in DeepSeek-V3-architecture model, generated on first use.")
    Path model;

    @Option(names = "--threads", paramLabel = "N", description = "Compute threads (default: all cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--kernels", paramLabel = "vector|scalar",
            description = "CPU kernels: vector (Vector API, default) or scalar (the reference).")
    String kernels = "vector";

    Path resolveModelDir() {
        return model != null ? model : SyntheticModels.ensureDefaultModel(SyntheticModels.defaultCacheRoot());
    }

    Kernels newKernels() {
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
        }
        ComputePool pool = ComputePool.create(threads);
        return switch (kernels) {
            case "vector" -> new VectorKernels(pool);
            case "scalar" -> new ScalarKernels(pool);
            default -> throw new IllegalArgumentException("--kernels must be vector or scalar, got " + kernels);
        };
    }

    /** Loads the model, showing progress on a terminal. */
    LoadedModel load(PrintWriter err) throws IOException {
        Path dir = resolveModelDir();
        Kernels k = newKernels();
        LOG.info("Backend: CPU, {} kernels, {} threads, Vector API species {}", kernels, threads,
                jdk.incubator.vector.FloatVector.SPECIES_PREFERRED);
        boolean tty = System.console() != null;
        return LoadedModel.open(dir, k, (done, total) -> {
            if (tty) {
                err.print("\rloading " + dir.getFileName() + ": layer " + done + "/" + total);
                if (done.equals(total)) {
                    err.println();
                }
                err.flush();
            }
        });
    }
}
