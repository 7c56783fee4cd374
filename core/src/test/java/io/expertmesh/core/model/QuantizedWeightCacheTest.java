package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.QuantizedAccuracyHarness.Fixture;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.core.tensor.Quantization;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The quantized weights kept on disk give the model of a fresh quantization bit for bit, and a cache that is
 * corrupt, truncated or another model's is never used: the load quantizes from the checkpoint and rewrites it.
 */
class QuantizedWeightCacheTest {
    private static final String ID_A = "a".repeat(64);
    private static final String ID_B = "b".repeat(64);
    private static ComputePool pool;

    @TempDir
    Path dir;

    @BeforeAll
    static void startPool() {
        pool = ComputePool.create(2);
    }

    @AfterAll
    static void stopPool() {
        pool.close();
    }

    /** Logits of the fixture's sequence from a model built with {@code cache} (null: none); records its hits. */
    private static float[] build(Fixture f, Quantization q, QuantizedWeightCache cache) {
        try (Checkpoint weights = TestWeights.open(f.dir());
             Transformer t = new ModelBuilder(f.config(), weights, new VectorKernels(pool)).quantize(q)
                     .quantizedCache(cache).build()) {
            return QuantizedAccuracyHarness.logits(t, f.seq(), f.vocab());
        }
    }

    @ParameterizedTest
    @EnumSource(value = Quantization.class, names = {"INT8", "INT4"})
    void secondLoad_mapsTheFile_sameLogitsAsQuantizingAgain(Quantization q) throws IOException {
        Fixture f = Fixture.load("deepseek-v3-tiny/bf16");
        float[] fresh = build(f, q, null);

        QuantizedWeightCache first = QuantizedWeightCache.in(dir, ID_A, q);
        assertArrayEquals(fresh, build(f, q, first), "the load that writes the cache");
        assertEquals(0, first.hits());
        assertTrue(Files.size(first.file()) > 0, "the cache file is written");
        long written = Files.getLastModifiedTime(first.file()).toMillis();

        QuantizedWeightCache second = QuantizedWeightCache.in(dir, ID_A, q);
        assertArrayEquals(fresh, build(f, q, second), "the load that maps the cache");
        assertTrue(second.hits() > 0, "the second load maps its weights from the file");
        assertEquals(written, Files.getLastModifiedTime(second.file()).toMillis(), "a valid cache is not rewritten");
    }

    @ParameterizedTest
    @EnumSource(Damage.class)
    void damagedOrForeignCache_isNotUsed_andIsRewritten(Damage damage) throws IOException {
        Fixture f = Fixture.load("deepseek-v3-tiny/bf16");
        Quantization q = Quantization.INT8;
        float[] fresh = build(f, q, null);
        QuantizedWeightCache writer = QuantizedWeightCache.in(dir, ID_A, q);
        build(f, q, writer);
        QuantizedWeightCache target = damage == Damage.OTHER_MODEL ? QuantizedWeightCache.in(dir, ID_B, q)
                : damage == Damage.OTHER_FORMAT ? QuantizedWeightCache.in(dir, ID_A, Quantization.INT4) : writer;
        damage.apply(writer.file(), target.file());

        QuantizedWeightCache damaged = QuantizedWeightCache.in(dir, damage == Damage.OTHER_MODEL ? ID_B : ID_A,
                damage == Damage.OTHER_FORMAT ? Quantization.INT4 : q);
        Quantization used = damage == Damage.OTHER_FORMAT ? Quantization.INT4 : q;
        float[] expected = used == q ? fresh : build(f, used, null);
        assertArrayEquals(expected, build(f, used, damaged), damage + ": the weights are quantized afresh");
        assertEquals(0, damaged.hits(), damage + ": nothing is taken from the file");

        QuantizedWeightCache again = QuantizedWeightCache.in(dir, damage == Damage.OTHER_MODEL ? ID_B : ID_A, used);
        assertArrayEquals(expected, build(f, used, again));
        assertTrue(again.hits() > 0, damage + ": the rewritten cache is used by the next load");
    }

    @org.junit.jupiter.api.Test
    void noCacheForUnquantizedWeights() {
        assertThrows(IllegalArgumentException.class, () -> QuantizedWeightCache.in(dir, ID_A, Quantization.NONE));
    }

    /** Ways a cache file can be wrong. */
    enum Damage {
        /** One byte of the weights flipped. */
        CORRUPT {
            @Override
            void apply(Path written, Path target) throws IOException {
                try (RandomAccessFile f = new RandomAccessFile(written.toFile(), "rw")) {
                    long at = f.length() / 2;
                    f.seek(at);
                    int b = f.read();
                    f.seek(at);
                    f.write(b ^ 0x10);
                }
            }
        },
        /** Cut in half, as by a full disk. */
        TRUNCATED {
            @Override
            void apply(Path written, Path target) throws IOException {
                try (RandomAccessFile f = new RandomAccessFile(written.toFile(), "rw")) {
                    f.setLength(f.length() / 2);
                }
            }
        },
        /** A valid file of model A under model B's name. */
        OTHER_MODEL {
            @Override
            void apply(Path written, Path target) throws IOException {
                Files.copy(written, target, StandardCopyOption.REPLACE_EXISTING);
            }
        },
        /** A valid int8 file under the int4 name. */
        OTHER_FORMAT {
            @Override
            void apply(Path written, Path target) throws IOException {
                Files.copy(written, target, StandardCopyOption.REPLACE_EXISTING);
            }
        };

        abstract void apply(Path written, Path target) throws IOException;
    }

    @Test
    void defaultDir_isThePropertysFolder_elseUnderTheCacheRoot() {
        String was = System.getProperty("expertmesh.quantizedCacheDir");
        try {
            System.setProperty("expertmesh.quantizedCacheDir", dir.resolve("elsewhere").toString());
            assertEquals(dir.resolve("elsewhere"), QuantizedWeightCache.defaultDir());
            System.clearProperty("expertmesh.quantizedCacheDir");
            assertEquals(SyntheticModels.defaultCacheRoot().resolve("quantized"), QuantizedWeightCache.defaultDir());
        } finally {
            if (was == null) {
                System.clearProperty("expertmesh.quantizedCacheDir");
            } else {
                System.setProperty("expertmesh.quantizedCacheDir", was);
            }
        }
    }
}
