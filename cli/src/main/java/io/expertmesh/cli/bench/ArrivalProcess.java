package io.expertmesh.cli.bench;

import java.util.random.RandomGenerator;

/**
 * Inter-arrival times of an open-loop load: gamma-distributed with shape {@code burstiness} and mean
 * {@code 1/rate}, as vLLM's {@code benchmark_serving}. Burstiness 1 is a Poisson process (exponential gaps);
 * below 1 arrivals come in bursts, above 1 they are more regular. An infinite rate sends everything at once.
 *
 * @param rate       requests per second (> 0, may be infinite)
 * @param burstiness the gamma shape (> 0)
 */
public record ArrivalProcess(double rate, double burstiness) {

    public ArrivalProcess {
        if (!(rate > 0)) {
            throw new IllegalArgumentException("--request-rate must be positive, got " + rate);
        }
        if (!(burstiness > 0) || Double.isInfinite(burstiness)) {
            throw new IllegalArgumentException("--burstiness must be positive and finite, got " + burstiness);
        }
    }

    /** The gap before the next request, in nanoseconds (0 for an infinite rate). */
    public long nextGapNanos(RandomGenerator random) {
        if (Double.isInfinite(rate)) {
            return 0;
        }
        double theta = 1.0 / (rate * burstiness); // scale: mean = shape * scale = 1/rate
        double seconds = gamma(random, burstiness) * theta;
        return (long) Math.min(Long.MAX_VALUE / 4.0, seconds * 1e9);
    }

    /**
     * A Gamma(shape, 1) sample by Marsaglia and Tsang (2000); for shape below 1 the boost
     * {@code Gamma(shape+1) * U^(1/shape)}.
     */
    static double gamma(RandomGenerator random, double shape) {
        if (shape < 1) {
            double u = random.nextDouble();
            while (u == 0) {
                u = random.nextDouble();
            }
            return gamma(random, shape + 1) * Math.pow(u, 1.0 / shape);
        }
        double d = shape - 1.0 / 3.0;
        double c = 1.0 / Math.sqrt(9 * d);
        for (int i = 0; i < 1_000; i++) { // accepts with probability > 0.95 per try
            double x = random.nextGaussian();
            double v = 1 + c * x;
            if (v <= 0) {
                continue;
            }
            v = v * v * v;
            double u = random.nextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
                return d * v;
            }
        }
        return shape; // not reached in practice: fall back to the mean
    }
}
