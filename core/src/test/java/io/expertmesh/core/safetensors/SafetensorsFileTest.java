package io.expertmesh.core.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
    @TempDir
    Path tmp;

    @Test
    void write_everyDtype_readsBackSameBytesShapesAndMetadata() throws Exception {
        float[] f32 = Files4Test.randomFloats(6, 1);
        short[] bf16 = new short[6];
        short[] f16 = new short[6];
        for (int i = 0; i < 6; i++) {
            bf16[i] = Bf16.fromFloat(f32[i]);
            f16[i] = Float.floatToFloat16(f32[i]);
        }
        byte[] fp8 = {0x38, (byte) 0xB8, 0x7E, 0x01, 0, 0x08};
        byte[] i64 = new byte[3 * 8];
        i64[0] = 42;
        Path file = tmp.resolve("all.safetensors");
        new SafetensorsWriter()
                .putMetadata("format", "pt")
                .addF32("f32", f32, 2, 3)
                .addBf16("bf16", bf16, 3, 2)
                .addF16("f16", f16, 6)
                .add("fp8", "F8_E4M3", fp8, 2, 3)
                .add("i64", "I64", i64, 3)
                .add("scalar", DType.F32, MemorySegment.ofArray(new byte[] {0, 0, (byte) 0x80, 0x3F}))
                .write(file);

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("bf16", "f16", "f32", "fp8", "i64", "scalar"), List.copyOf(f.names()));
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertArrayEquals(f32, f.data("f32").toArray(ValueLayout.JAVA_FLOAT_UNALIGNED));
            assertArrayEquals(bf16, f.data("bf16").toArray(ValueLayout.JAVA_SHORT_UNALIGNED));
            assertArrayEquals(f16, f.data("f16").toArray(ValueLayout.JAVA_SHORT_UNALIGNED));
            assertArrayEquals(fp8, f.data("fp8").toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(i64, f.data("i64").toArray(ValueLayout.JAVA_BYTE));
            assertEquals(1f, f.data("scalar").get(ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
            assertArrayEquals(new long[] {3, 2}, f.info("bf16").shape());
            assertEquals(DType.F8_E4M3, f.info("fp8").dtype());
            assertEquals(0, f.info("scalar").rank());
            assertEquals("I64", f.dtypeName("i64"));
            assertTrue(f.data("f32").isMapped());
        }
    }

    @Test
    void write_header_paddedToMultipleOf8MetadataFirstNamesSorted() throws Exception {
        Path file = tmp.resolve("h.safetensors");
        new SafetensorsWriter().addF32("b", new float[1], 1).addF32("a", new float[2], 2)
                .putMetadata("format", "pt").write(file);
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8);
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertEquals("{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", header.stripTrailing());
        assertEquals(8 + n + 12, bytes.length);
    }

    @Test
    void open_headerLengthBeyondFile_throwsNamingFile() throws Exception {
        Path file = tmp.resolve("bad.safetensors");
        Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).array());
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("1000"), e.getMessage());
    }

    @Test
    void open_headerNotJson_throwsNamingFile() throws Exception {
        Path file = tmp.resolve("bad.safetensors");
        Files4Test.writeRaw(file, "{\"a\": {\"dtype\": ", 0);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("JSON"), e.getMessage());
    }

    @Test
    void open_tinyFile_throwsNamingFile() throws Exception {
        Path file = tmp.resolve("tiny.safetensors");
        Files.write(file, new byte[3]);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void open_truncatedFile_throwsNamingTensorAndFile() throws Exception {
        Path file = tmp.resolve("t.safetensors");
        new SafetensorsWriter().addF32("a", new float[4], 4).addF32("z.last", new float[4], 2, 2).write(file);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(raf.length() - 1);
        }
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("tensor z.last in " + file), e.getMessage());
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void open_offsetsDisagreeWithShape_throwsNamingTensorAndFile() throws Exception {
        Path file = tmp.resolve("o.safetensors");
        Files4Test.writeRaw(file, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 8);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("tensor w in " + file), e.getMessage());
        assertTrue(e.getMessage().contains("needs 12"), e.getMessage());
    }

    @Test
    void open_unknownDtype_throwsNamingTensorAndFile() throws Exception {
        Path file = tmp.resolve("u.safetensors");
        Files4Test.writeRaw(file, "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("tensor w in " + file) && e.getMessage().contains("Q4_K"),
                e.getMessage());
    }

    @Test
    void open_malformedShape_throwsNamingTensorAndFile() throws Exception {
        Path file = tmp.resolve("s.safetensors");
        Files4Test.writeRaw(file, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("tensor w in " + file), e.getMessage());
    }

    @Test
    void open_offsetsBeyond2GiBInSmallFile_throwsTruncated() throws Exception {
        Path file = tmp.resolve("big.safetensors");
        long bytes = (1L << 31) + 64;
        Files4Test.writeRaw(file, "{\"experts\":{\"dtype\":\"F32\",\"shape\":[" + bytes / 4
                + "],\"data_offsets\":[0," + bytes + "]}}", 1024);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("tensor experts in " + file), e.getMessage());
        assertTrue(e.getMessage().contains(Long.toString(bytes)), e.getMessage());
    }

    @Test
    void open_sparseTensorOver2GiB_mapsAndReadsBeyond2GiB() throws Exception {
        Path file = tmp.resolve("sparse.safetensors");
        long elements = (1L << 31) / 4 + (1 << 20);
        String json = "{\"experts\":{\"dtype\":\"F32\",\"shape\":[" + elements + "],\"data_offsets\":[0,"
                + elements * 4 + "]}}";
        Files4Test.writeRaw(file, json, elements * 4);
        long dataStart = 8 + json.length();
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(dataStart + (elements - 1) * 4);
            raf.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(2.5f).array());
        }
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            MemorySegment data = f.data("experts");
            assertEquals(elements * 4, data.byteSize());
            assertEquals(2.5f, data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, elements - 1));
            assertEquals(0f, data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, (1L << 31) / 4 + 5));
            assertEquals(elements, f.info("experts").elementCount());
        }
    }

    @Test
    void data_missingTensor_throwsNamingTensorAndFile() throws Exception {
        Path file = tmp.resolve("m.safetensors");
        new SafetensorsWriter().addF32("a", new float[1], 1).write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> f.data("b"));
            assertEquals("tensor b not found in " + file, e.getMessage());
        }
    }

    @Test
    void add_bytesDisagreeWithShape_throwsIllegalArgument() {
        assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter().addF32("a", new float[3], 2, 2));
        assertThrows(IllegalArgumentException.class, () -> new SafetensorsWriter().add("a", "Q4", new byte[1], 1));
    }
}
