package io.expertmesh.core.model;

import java.io.IOException;
import java.nio.file.Path;

/** Opens a fixture's weights for model tests. */
final class TestWeights {
    private TestWeights() {
    }

    static WeightSource open(Path dir) throws IOException {
        return new TinySafetensors(dir.resolve("model.safetensors"));
    }
}
