package io.expertmesh.worker;

import java.nio.file.Path;
import java.util.Objects;

/**
 * An expert worker's configuration, validated here and parsed once.
 *
 * @param modelDir the Hugging Face model directory (config.json and safetensors) the experts are mapped from
 * @param port     TCP port for the gRPC server (0: any free port)
 * @param experts  the routed experts of every MoE layer loaded at start-up
 */
public record WorkerConfig(Path modelDir, int port, ExpertSelection experts) {

    public WorkerConfig {
        Objects.requireNonNull(modelDir, "modelDir");
        Objects.requireNonNull(experts, "experts");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be in 0..65535, got " + port);
        }
    }
}
