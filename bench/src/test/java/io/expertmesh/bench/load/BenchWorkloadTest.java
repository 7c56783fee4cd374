package io.expertmesh.bench.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Length distributions, the gamma/Poisson arrival process and the workload, checked statistically. */
class BenchWorkloadTest {
    private static final int N = 20_000;

    @Test
    void parse_fixedUniformNormal_givesThoseDistributions() {
        assertEquals(new LengthDistribution.Fixed(7), LengthDistribution.parse("fixed:7"));
        assertEquals(new LengthDistribution.Fixed(7), LengthDistribution.parse("7"));
        assertEquals(new LengthDistribution.Uniform(3, 9), LengthDistribution.parse("uniform:3:9"));
        assertEquals(new LengthDistribution.Normal(100, 15), LengthDistribution.parse("normal:100:15"));
        assertEquals("normal:100:15", LengthDistribution.parse("normal:100:15").toString());
    }

    @Test
    void parse_malformed_throwsWithTheExpectedForms() {
        for (String bad : List.of("fixed", "fixed:0", "uniform:5:2", "normal:0:1", "zipf:1", "uniform:a:b")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LengthDistribution.parse(bad), bad);
            assertTrue(e.getMessage().contains("<=") || e.getMessage().contains(">=")
                    || e.getMessage().contains("expected"), e.getMessage());
        }
    }

    @Test
    void uniform_sampled_coversRangeWithMeanAndNothingOutside() {
        LengthDistribution d = LengthDistribution.parse("uniform:10:20");
        SplittableRandom r = new SplittableRandom(1);
        int[] s = new int[N];
        Arrays.setAll(s, i -> d.sample(r));
        assertEquals(10, Arrays.stream(s).min().orElseThrow());
        assertEquals(20, Arrays.stream(s).max().orElseThrow());
        assertEquals(15.0, Arrays.stream(s).average().orElseThrow(), 0.1);
    }

    @Test
    void normal_sampled_hasMeanAndStdWithinTolerance() {
        LengthDistribution d = LengthDistribution.parse("normal:200:20");
        SplittableRandom r = new SplittableRandom(2);
        double[] s = new double[N];
        Arrays.setAll(s, i -> d.sample(r));
        double mean = Arrays.stream(s).average().orElseThrow();
        double var = Arrays.stream(s).map(x -> (x - mean) * (x - mean)).sum() / (N - 1);
        assertEquals(200, mean, 0.6); // 3 standard errors: 3 * 20 / sqrt(20000) = 0.42
        assertEquals(20, Math.sqrt(var), 0.5);
    }

    @Test
    void normal_wideSpread_isClampedToAtLeastOne() {
        LengthDistribution d = LengthDistribution.parse("normal:2:50");
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < N; i++) {
            assertTrue(d.sample(r) >= 1);
        }
    }

    @Test
    void arrivals_poisson_gapsAreExponentialWithMeanOneOverRate() {
        ArrivalProcess p = new ArrivalProcess(50, 1.0);
        SplittableRandom r = new SplittableRandom(4);
        double[] gaps = new double[N];
        Arrays.setAll(gaps, i -> p.nextGapNanos(r) / 1e9);
        double mean = Arrays.stream(gaps).average().orElseThrow();
        double var = Arrays.stream(gaps).map(g -> (g - mean) * (g - mean)).sum() / (N - 1);
        assertEquals(0.02, mean, 0.02 * 0.03);
        // exponential: coefficient of variation 1; P(gap > mean) = 1/e
        assertEquals(1.0, Math.sqrt(var) / mean, 0.04);
        double above = Arrays.stream(gaps).filter(g -> g > 0.02).count() / (double) N;
        assertEquals(Math.exp(-1), above, 0.015);
    }

    @Test
    void arrivals_burstiness_keepsMeanAndSetsVarianceToOneOverShape() {
        for (double shape : new double[] {0.25, 0.5, 2, 4}) {
            ArrivalProcess p = new ArrivalProcess(10, shape);
            SplittableRandom r = new SplittableRandom(5);
            double[] gaps = new double[N];
            Arrays.setAll(gaps, i -> p.nextGapNanos(r) / 1e9);
            double mean = Arrays.stream(gaps).average().orElseThrow();
            double var = Arrays.stream(gaps).map(g -> (g - mean) * (g - mean)).sum() / (N - 1);
            assertEquals(0.1, mean, 0.1 * 0.05, "shape " + shape);
            // gamma: CV^2 = 1 / shape
            assertEquals(1 / shape, var / (mean * mean), 0.12 / shape, "shape " + shape);
        }
    }

    @Test
    void arrivals_infiniteRate_sendsAtOnce() {
        assertEquals(0, new ArrivalProcess(Double.POSITIVE_INFINITY, 1).nextGapNanos(new SplittableRandom(6)));
    }

    @Test
    void arrivals_nonPositiveRateOrShape_throws() {
        assertThrows(IllegalArgumentException.class, () -> new ArrivalProcess(0, 1));
        assertThrows(IllegalArgumentException.class, () -> new ArrivalProcess(1, 0));
    }

    @Test
    void workload_sameSeed_sameRequestsAndIdsInVocab() {
        Workload w = new Workload(LengthDistribution.parse("uniform:5:40"), LengthDistribution.parse("fixed:8"),
                0, 0, 1024, 256, 42);
        List<Workload.Item> a = w.generate(50);
        List<Workload.Item> b = w.generate(50);
        for (int i = 0; i < 50; i++) {
            assertArrayEquals(a.get(i).promptIds(), b.get(i).promptIds());
            assertTrue(Arrays.stream(a.get(i).promptIds()).allMatch(t -> t >= 0 && t < 1024));
            assertEquals(8, a.get(i).maxTokens());
            assertEquals(-1, a.get(i).group());
        }
    }

    @Test
    void workload_promptPlusOutputBeyondContext_isCutToFit() {
        Workload w = new Workload(LengthDistribution.parse("fixed:300"), LengthDistribution.parse("fixed:100"),
                0, 0, 50, 256, 1);
        Workload.Item it = w.generate(1).getFirst();
        assertEquals(255, it.promptIds().length);
        assertEquals(1, it.maxTokens());
        Workload w2 = new Workload(LengthDistribution.parse("fixed:200"), LengthDistribution.parse("fixed:100"),
                0, 0, 50, 256, 1);
        assertEquals(56, w2.generate(1).getFirst().maxTokens());
    }

    @Test
    void workload_prefixGroups_requestsOfAGroupShareTheirPrefixOnly() {
        Workload w = new Workload(LengthDistribution.parse("fixed:10"), LengthDistribution.parse("fixed:4"), 3, 32,
                1024, 256, 9);
        List<Workload.Item> items = w.generate(9);
        for (Workload.Item it : items) {
            assertEquals(42, it.promptIds().length);
        }
        for (int i = 0; i < 9; i++) {
            assertEquals(i % 3, items.get(i).group());
            int[] prefix = Arrays.copyOf(items.get(i).promptIds(), 32);
            assertArrayEquals(Arrays.copyOf(items.get(i % 3).promptIds(), 32), prefix);
            if (i >= 3) {
                assertTrue(!Arrays.equals(items.get(i).promptIds(), items.get(i % 3).promptIds()),
                        "suffixes differ");
            }
        }
        assertTrue(!Arrays.equals(Arrays.copyOf(items.get(0).promptIds(), 32),
                Arrays.copyOf(items.get(1).promptIds(), 32)), "groups differ");
    }

    @Test
    void workload_prefixWithoutRoom_throws() {
        assertThrows(IllegalArgumentException.class, () -> new Workload(LengthDistribution.parse("1"),
                LengthDistribution.parse("1"), 2, 255, 100, 256, 0));
        assertThrows(IllegalArgumentException.class, () -> new Workload(LengthDistribution.parse("1"),
                LengthDistribution.parse("1"), 2, 0, 100, 256, 0));
    }
}
