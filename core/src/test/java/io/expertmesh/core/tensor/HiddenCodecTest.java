package io.expertmesh.core.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

class HiddenCodecTest {
    @Test
    void encodeRows_equalsEncodingTheGatheredRows_andDecodesBack() {
        Random rnd = new Random(3);
        int width = 37;
        float[] x = new float[5 * width];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        int[] rows = {4, 0, 2};
        float[] gathered = new float[rows.length * width];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(x, rows[i] * width, gathered, i * width, width);
        }
        for (HiddenCodec codec : HiddenCodec.values()) {
            byte[] bytes = codec.encodeRows(x, rows, width);
            assertArrayEquals(codec.encode(gathered, 0, gathered.length), bytes);
            float[] back = new float[gathered.length];
            codec.decode(ByteBuffer.wrap(bytes), back, 0, back.length);
            float[] expected = gathered.clone();
            if (codec == HiddenCodec.BF16) {
                for (int i = 0; i < expected.length; i++) {
                    expected[i] = Bf16.round(expected[i]);
                }
            }
            assertArrayEquals(expected, back);
        }
    }
}
