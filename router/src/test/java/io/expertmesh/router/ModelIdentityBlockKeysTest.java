package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.tensor.Quantization;
import io.expertmesh.kvcache.BlockKey;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineConfig;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The keys a router gives KV blocks in the distributed tier follow the model's contents, never its path: copies of
 * one model in different directories share blocks; other weights under one path never do.
 */
class ModelIdentityBlockKeysTest {
    private static final EngineConfig ENGINE = new EngineConfig(16, 8L << 20, 256, 8, 8, true);
    private static final int[] PROMPT = new int[64];

    static {
        for (int i = 0; i < PROMPT.length; i++) {
            PROMPT[i] = 1 + (i * 37) % 1000;
        }
    }

    @TempDir
    Path tmp;

    private static Path copyFixture(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(TestModels.FIXTURE.resolve(f), dir.resolve(f));
        }
        return dir;
    }

    private static List<BlockKey> keys(Path model) throws Exception {
        try (TestRouter r = TestRouter.started(model, ENGINE)) {
            return r.server.engine().blockKeys(PROMPT);
        }
    }

    @Test
    void blockKeys_identicalCopiesInOtherDirectories_equal() throws Exception {
        List<BlockKey> a = keys(copyFixture(tmp.resolve("a")));
        List<BlockKey> b = keys(copyFixture(tmp.resolve("containers/b/model")));

        assertFalse(a.isEmpty());
        assertEquals(a, b);
    }

    @Test
    void blockKeys_samePathOtherWeights_differ() throws Exception {
        Path dir = copyFixture(tmp.resolve("model"));
        List<BlockKey> before = keys(dir);
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("model.safetensors").toFile(), "rw")) {
            f.seek(f.length() - 1);
            int b = f.read();
            f.seek(f.length() - 1);
            f.write(b ^ 1);
        }

        List<BlockKey> after = keys(dir);

        assertEquals(before.size(), after.size());
        for (int i = 0; i < before.size(); i++) {
            assertNotEquals(before.get(i), after.get(i), "block " + i);
        }
    }

    @Test
    void blockKeys_sameWeightsQuantizedInt8OrInt4_differFromUnquantizedAndEachOther() throws Exception {
        // int8 and int4 weights give other KV than the same checkpoint unquantized, and than each other: their
        // blocks must not be shared
        List<List<BlockKey>> keys = new ArrayList<>();
        for (var q : List.of(Quantization.NONE, Quantization.INT8, Quantization.INT4)) {
            try (var pool = ComputePool.create(1);
                 var model = LoadedModel.open(TestModels.FIXTURE,
                         new VectorKernels(pool), (a, b) -> { }, null, q);
                 var engine = new Engine(model, ENGINE)) {
                keys.add(engine.blockKeys(PROMPT));
            }
        }
        assertFalse(keys.get(0).isEmpty());
        for (int[] pair : new int[][] {{0, 1}, {0, 2}, {1, 2}}) {
            assertEquals(keys.get(pair[0]).size(), keys.get(pair[1]).size());
            for (int i = 0; i < keys.get(0).size(); i++) {
                assertNotEquals(keys.get(pair[0]).get(i), keys.get(pair[1]).get(i), "modes " + pair[0] + ", "
                        + pair[1] + " block " + i);
            }
        }
    }

    @Test
    void blockKeys_fp8CheckpointReadNatively_differFromItsBf16Widening() throws Exception {
        // -Dexpertmesh.fp8=bf16 widens FP8 weights to BF16 (rounded), native reads them exactly: other KV
        Path fp8 = tmp.resolve("fp8");
        io.expertmesh.core.safetensors.Fp8BlockQuantizer.quantize(TestModels.FIXTURE, fp8);
        List<BlockKey> nativeKeys = keysOf(fp8);
        List<BlockKey> widened;
        String before = System.getProperty(io.expertmesh.core.safetensors.Fp8Loading.PROPERTY);
        System.setProperty(io.expertmesh.core.safetensors.Fp8Loading.PROPERTY, "bf16");
        try {
            widened = keysOf(fp8);
        } finally {
            if (before == null) {
                System.clearProperty(io.expertmesh.core.safetensors.Fp8Loading.PROPERTY);
            } else {
                System.setProperty(io.expertmesh.core.safetensors.Fp8Loading.PROPERTY, before);
            }
        }
        assertFalse(nativeKeys.isEmpty());
        for (int i = 0; i < nativeKeys.size(); i++) {
            assertNotEquals(nativeKeys.get(i), widened.get(i), "block " + i);
        }
    }

    private static List<BlockKey> keysOf(Path dir) throws Exception {
        try (var pool = ComputePool.create(1);
             var model = LoadedModel.open(dir, new VectorKernels(pool), (a, b) -> { }, null, Quantization.NONE);
             var engine = new Engine(model, ENGINE)) {
            return engine.blockKeys(PROMPT);
        }
    }
}
