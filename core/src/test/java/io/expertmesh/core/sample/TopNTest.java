package io.expertmesh.core.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class TopNTest {

    @Test
    void sortDescending_randomWithTies_matchesFullSort() {
        var r = new Random(11);
        var top = new TopN(1);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + r.nextInt(300);
            int k = 1 + r.nextInt(40);
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = r.nextInt(20); // many ties
            }
            top.reset(k);
            top.offerAll(x, 0, n);
            top.sortDescending();
            int[] expected = IntStream.range(0, n).boxed()
                    .sorted(Comparator.comparingDouble((Integer i) -> -x[i]).thenComparingInt(i -> i))
                    .limit(k).mapToInt(Integer::intValue).toArray();
            int[] actual = IntStream.range(0, top.size()).map(top::id).toArray();
            assertEquals(Arrays.toString(expected), Arrays.toString(actual), "n=" + n + " k=" + k);
        }
    }
}
