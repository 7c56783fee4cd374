package io.expertmesh.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.core.tensor.DType;
import io.expertmesh.core.tensor.Matrix;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Minimal single-file safetensors reader for model tests (F32/BF16 only). */
final class TinySafetensors implements WeightSource {
    private final MemorySegment file;
    private final JsonNode header;
    private final long dataStart;

    TinySafetensors(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            file = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), Arena.ofAuto());
        }
        long n = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        byte[] h = file.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        header = new ObjectMapper().readTree(new String(h, StandardCharsets.UTF_8));
        dataStart = 8 + n;
    }

    @Override
    public boolean has(String name) {
        return header.has(name);
    }

    private MemorySegment slice(String name) {
        JsonNode t = header.get(name);
        if (t == null) {
            throw new IllegalArgumentException("missing " + name);
        }
        long a = t.get("data_offsets").get(0).asLong();
        long b = t.get("data_offsets").get(1).asLong();
        return file.asSlice(dataStart + a, b - a);
    }

    @Override
    public Matrix matrix(String name, int rows, int cols) {
        return new Matrix(name, DType.fromSafetensors(header.get(name).get("dtype").asText()), rows, cols, slice(name));
    }

    @Override
    public float[] vector(String name, int length) {
        MemorySegment s = slice(name);
        float[] out = new float[length];
        boolean bf16 = header.get(name).get("dtype").asText().equals("BF16");
        for (int i = 0; i < length; i++) {
            out[i] = bf16 ? Bf16.toFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i))
                    : s.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
        }
        return out;
    }
}
