package io.expertmesh.core.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Hidden-state vectors as little-endian bytes, the expert worker wire format: {@link #F32} (IEEE float32, exact)
 * or {@link #BF16} (bfloat16 rounded to nearest even, half the bytes). Shared by the router (sending) and the
 * worker (receiving).
 */
public enum HiddenCodec {
    F32(4),
    BF16(2);

    private final int width;

    HiddenCodec(int width) {
        this.width = width;
    }

    /** {@link #F32} when {@code exact}, else {@link #BF16}. */
    public static HiddenCodec exact(boolean exact) {
        return exact ? F32 : BF16;
    }

    /** Bytes per value. */
    public int width() {
        return width;
    }

    /** {@code x[off, off + count)} as little-endian bytes. */
    public byte[] encode(float[] x, int off, int count) {
        ByteBuffer buf = ByteBuffer.allocate(count * width).order(ByteOrder.LITTLE_ENDIAN);
        if (this == F32) {
            buf.asFloatBuffer().put(x, off, count);
        } else {
            for (int i = 0; i < count; i++) {
                buf.putShort(Bf16.fromFloat(x[off + i]));
            }
        }
        return buf.array();
    }

    /**
     * Rows {@code rows[i]} of the row-major {@code x} (rows of {@code rowWidth} values), in that order, as
     * little-endian bytes: gathers and encodes in one pass.
     */
    public byte[] encodeRows(float[] x, int[] rows, int rowWidth) {
        ByteBuffer buf = ByteBuffer.allocate(rows.length * rowWidth * width).order(ByteOrder.LITTLE_ENDIAN);
        if (this == F32) {
            FloatBuffer fb = buf.asFloatBuffer();
            for (int r : rows) {
                fb.put(x, r * rowWidth, rowWidth);
            }
        } else {
            for (int r : rows) {
                for (int c = 0; c < rowWidth; c++) {
                    buf.putShort(Bf16.fromFloat(x[r * rowWidth + c]));
                }
            }
        }
        return buf.array();
    }

    /** Reads {@code count} values from {@code bytes} (position on) into {@code dst[off, off + count)}. */
    public void decode(ByteBuffer bytes, float[] dst, int off, int count) {
        ByteBuffer buf = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        if (this == F32) {
            buf.asFloatBuffer().get(dst, off, count);
        } else {
            for (int i = 0; i < count; i++) {
                dst[off + i] = Bf16.toFloat(buf.getShort());
            }
        }
    }
}
