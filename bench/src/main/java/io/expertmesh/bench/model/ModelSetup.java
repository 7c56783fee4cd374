package io.expertmesh.bench.model;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.tensor.Quantization;
import java.nio.file.Path;

/**
 * How the model under measurement is built and where it runs: the command line's model options, seen by the
 * benchmarks without their parsing.
 */
public interface ModelSetup {
    /** The model directory measured, or {@code null} for the benchmark model. */
    Path model();

    /** How projection weights are stored. */
    Quantization quantization();

    /** Kernels whose products run on the chosen device (the GPU's when one is picked), for raw forward steps. */
    Kernels newKernels();

    /** The CPU kernels, for a model whose forward steps run on {@link #forwardBackend()}. */
    Kernels newCpuKernels();

    /** Where the engine's forward steps run. */
    ForwardBackend.Factory forwardBackend();

    /** Where an expert worker's experts run. */
    ExpertRunner.Factory expertRunners();

    /** One line for the report header: threads and kernel set. */
    String describe();
}
