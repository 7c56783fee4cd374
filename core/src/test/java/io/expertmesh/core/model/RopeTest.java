package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.expertmesh.core.config.RopeScaling;
import org.junit.jupiter.api.Test;

class RopeTest {

    @Test
    void fill_withoutYarn_isPlainRotaryFrequencies() {
        Rope rope = new Rope(8, 10000, null, false);
        float[] cos = new float[4];
        float[] sin = new float[4];
        rope.fill(3, cos, sin, 0);
        for (int i = 0; i < 4; i++) {
            double angle = 3 * (float) (1.0 / Math.pow(10000, 2.0 * i / 8));
            assertEquals(Math.cos(angle), cos[i], 1e-6);
            assertEquals(Math.sin(angle), sin[i], 1e-6);
        }
    }

    @Test
    void fill_yarnActive_slowsLowFrequenciesByFactorAndKeepsHighOnes() {
        RopeScaling yarn = new RopeScaling(4, 64, 32, 1, 1, 1);
        Rope plain = new Rope(64, 10000, null, false);
        Rope scaled = new Rope(64, 10000, yarn, true);
        float[] c1 = new float[32];
        float[] s1 = new float[32];
        float[] c2 = new float[32];
        float[] s2 = new float[32];
        plain.fill(50, c1, s1, 0);
        scaled.fill(50, c2, s2, 0);
        assertEquals(c1[0], c2[0], 1e-6, "highest frequency pair is not interpolated");
        assertNotEquals(c1[31], c2[31], "lowest frequency pair is interpolated");
        double slowest = 50 * (1.0 / Math.pow(10000, 62.0 / 64)) / 4;
        assertEquals(Math.cos(slowest), c2[31], 1e-5);
    }

    @Test
    void fill_yarnInactive_ignoresScaling() {
        RopeScaling yarn = new RopeScaling(4, 64, 32, 1, 1, 1);
        float[] c1 = new float[4];
        float[] s1 = new float[4];
        float[] c2 = new float[4];
        float[] s2 = new float[4];
        new Rope(8, 10000, null, false).fill(9, c1, s1, 0);
        new Rope(8, 10000, yarn, false).fill(9, c2, s2, 0);
        assertEquals(c1[3], c2[3]);
    }
}
