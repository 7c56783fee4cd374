package io.expertmesh.bench.load;

import java.util.random.RandomGenerator;
import org.apache.commons.rng.UniformRandomProvider;
import org.apache.commons.rng.sampling.distribution.AhrensDieterMarsagliaTsangGammaSampler;

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
     * A Gamma(shape, 1) sample: commons-rng's Marsaglia-Tsang sampler (Ahrens-Dieter below shape 1), drawing its
     * uniform bits from {@code random}.
     */
    static double gamma(RandomGenerator random, double shape) {
        UniformRandomProvider bits = random::nextLong;
        return AhrensDieterMarsagliaTsangGammaSampler.of(bits, shape, 1.0).sample();
    }
}
