package io.expertmesh.core.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Hidden-state vectors as little-endian bytes, the expert worker wire format: IEEE float32 (exact) or bfloat16
 * (rounded to nearest even, half the bytes). Shared by the router (sending) and the worker (receiving).
 */
public final class HiddenCodec {
    private HiddenCodec() {
    }

    /** Bytes per value. */
    public static int width(boolean f32) {
        return f32 ? 4 : 2;
    }

    /** {@code x[off, off + count)} as little-endian bytes. */
    public static byte[] encode(float[] x, int off, int count, boolean f32) {
        ByteBuffer buf = ByteBuffer.allocate(count * width(f32)).order(ByteOrder.LITTLE_ENDIAN);
        if (f32) {
            buf.asFloatBuffer().put(x, off, count);
        } else {
            for (int i = 0; i < count; i++) {
                buf.putShort(Bf16.fromFloat(x[off + i]));
            }
        }
        return buf.array();
    }

    /**
     * Rows {@code rows[i]} of the row-major {@code x} (rows of {@code width} values), in that order, as
     * little-endian bytes: gathers and encodes in one pass.
     */
    public static byte[] encodeRows(float[] x, int[] rows, int width, boolean f32) {
        ByteBuffer buf = ByteBuffer.allocate(rows.length * width * width(f32)).order(ByteOrder.LITTLE_ENDIAN);
        if (f32) {
            java.nio.FloatBuffer fb = buf.asFloatBuffer();
            for (int r : rows) {
                fb.put(x, r * width, width);
            }
        } else {
            for (int r : rows) {
                for (int c = 0; c < width; c++) {
                    buf.putShort(Bf16.fromFloat(x[r * width + c]));
                }
            }
        }
        return buf.array();
    }

    /** Reads {@code count} values from {@code bytes} (position on) into {@code dst[off, off + count)}. */
    public static void decode(ByteBuffer bytes, boolean f32, float[] dst, int off, int count) {
        ByteBuffer buf = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        if (f32) {
            buf.asFloatBuffer().get(dst, off, count);
        } else {
            for (int i = 0; i < count; i++) {
                dst[off + i] = Bf16.toFloat(buf.getShort());
            }
        }
    }
}
