package io.expertmesh.core.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.safetensors.ModelLoadException;
import io.expertmesh.core.safetensors.SafetensorsWriter;
import io.expertmesh.core.safetensors.TensorInfo;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad model directories fail at load with a message that names what is wrong, and where. */
class LoadedModelTest {
    static final Path FIXTURE = Path.of("src/test/resources/fixtures/deepseek-v3-tiny/bf16");

    @TempDir
    Path tmp;

    private static LoadedModel open(Path dir) throws IOException {
        return LoadedModel.open(dir, new VectorKernels(ComputePool.create(1)), (a, b) -> { });
    }

    /** Copies the fixture, leaving out {@code skip} (if not null). */
    private Path copyFixture(String skip) throws IOException {
        Path dir = tmp.resolve("model");
        Files.createDirectories(dir);
        Files.copy(FIXTURE.resolve("config.json"), dir.resolve("config.json"));
        try (Checkpoint src = Checkpoint.open(FIXTURE)) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String name : src.names()) {
                if (!name.equals(skip)) {
                    TensorInfo info = src.info(name);
                    w.add(name, info.dtype(), src.raw(name), info.shape());
                }
            }
            w.write(dir.resolve("model.safetensors"));
        }
        return dir;
    }

    @Test
    void open_fixture_loadsWithoutTokenizer() throws IOException {
        try (LoadedModel m = open(FIXTURE)) {
            assertEquals(3, m.config().numLayers());
            assertTrue(m.tokenizer().isEmpty());
        }
    }

    @Test
    void open_missingDirectory_saysSo() {
        IOException e = assertThrows(IOException.class, () -> open(tmp.resolve("nope")));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
    }

    @Test
    void open_noConfig_saysConfigMissing() throws IOException {
        Files.createDirectories(tmp.resolve("empty"));
        IOException e = assertThrows(IOException.class, () -> open(tmp.resolve("empty")));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
    }

    @Test
    void open_unsupportedArchitecture_namesItAndTheSupportedOnes() throws IOException {
        Path dir = copyFixture(null);
        ObjectNode c = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        c.putArray("architectures").add("LlamaForCausalLM");
        new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), c);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(dir));
        assertTrue(e.getMessage().contains("LlamaForCausalLM") && e.getMessage().contains("DeepseekV3ForCausalLM"),
                e.getMessage());
    }

    @Test
    void open_missingTensor_namesTensorAndFile() throws IOException {
        String name = "model.layers.2.mlp.experts.5.up_proj.weight";
        Path dir = copyFixture(name);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> open(dir));
        assertTrue(e.getMessage().contains(name) && e.getMessage().contains("model.safetensors"), e.getMessage());
    }

    @Test
    void open_shapeDisagreesWithConfig_namesTensorAndShapes() throws IOException {
        Path dir = copyFixture(null);
        ObjectNode c = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        c.put("moe_intermediate_size", 48);
        new ObjectMapper().writeValue(dir.resolve("config.json").toFile(), c);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> open(dir));
        assertTrue(e.getMessage().contains("experts.0.gate_proj.weight") && e.getMessage().contains("48"),
                e.getMessage());
    }

    @Test
    void open_truncatedFile_namesFile() throws IOException {
        Path dir = copyFixture(null);
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("model.safetensors").toFile(), "rw")) {
            f.setLength(f.length() - 1000);
        }
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> open(dir));
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
    }
}
