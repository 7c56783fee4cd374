package io.expertmesh.core.model;

import io.expertmesh.core.safetensors.Checkpoint;
import java.nio.file.Path;

/** Opens a fixture's weights for model tests. */
final class TestWeights {
    private TestWeights() {
    }

    static Checkpoint open(Path dir) {
        return Checkpoint.open(dir);
    }
}
