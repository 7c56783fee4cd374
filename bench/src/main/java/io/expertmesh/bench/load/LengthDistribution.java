package io.expertmesh.bench.load;

import java.util.random.RandomGenerator;

/**
 * A distribution of token counts (prompt or output lengths), parsed from {@code fixed:N}, {@code uniform:A:B}
 * (inclusive) or {@code normal:MEAN:STD}. Every sample is at least 1; normal samples are rounded and clamped.
 */
public sealed interface LengthDistribution {

    /** One length, at least 1. */
    int sample(RandomGenerator random);

    /** The mean of the distribution before clamping (for logs and the report). */
    double mean();

    /** Always {@code n}. */
    record Fixed(int n) implements LengthDistribution {
        public Fixed {
            if (n < 1) {
                throw new IllegalArgumentException("fixed length must be >= 1, got " + n);
            }
        }

        @Override
        public int sample(RandomGenerator random) {
            return n;
        }

        @Override
        public double mean() {
            return n;
        }

        @Override
        public String toString() {
            return "fixed:" + n;
        }
    }

    /** Uniform over {@code [min, max]}, both included. */
    record Uniform(int min, int max) implements LengthDistribution {
        public Uniform {
            if (min < 1 || max < min) {
                throw new IllegalArgumentException("uniform:A:B needs 1 <= A <= B, got " + min + ":" + max);
            }
        }

        @Override
        public int sample(RandomGenerator random) {
            return min + random.nextInt(max - min + 1);
        }

        @Override
        public double mean() {
            return (min + max) / 2.0;
        }

        @Override
        public String toString() {
            return "uniform:" + min + ":" + max;
        }
    }

    /** Normal with the given mean and standard deviation, rounded to an integer and clamped to at least 1. */
    record Normal(double mean, double std) implements LengthDistribution {
        public Normal {
            if (!(mean >= 1) || !(std >= 0) || Double.isInfinite(mean) || Double.isInfinite(std)) {
                throw new IllegalArgumentException("normal:MEAN:STD needs MEAN >= 1 and STD >= 0, got "
                        + mean + ":" + std);
            }
        }

        @Override
        public int sample(RandomGenerator random) {
            double x = Math.rint(random.nextGaussian(mean, std));
            return (int) Math.max(1, Math.min(Integer.MAX_VALUE, x));
        }

        @Override
        public String toString() {
            return "normal:" + fmt(mean) + ":" + fmt(std);
        }

        private static String fmt(double d) {
            return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
        }
    }

    /** Parses {@code fixed:N}, {@code uniform:A:B} or {@code normal:MEAN:STD}; a bare {@code N} means fixed. */
    static LengthDistribution parse(String spec) {
        String[] p = spec.strip().split(":");
        try {
            return switch (p[0]) {
                case "fixed" -> {
                    need(p, 2, spec);
                    yield new Fixed(Integer.parseInt(p[1]));
                }
                case "uniform" -> {
                    need(p, 3, spec);
                    yield new Uniform(Integer.parseInt(p[1]), Integer.parseInt(p[2]));
                }
                case "normal" -> {
                    need(p, 3, spec);
                    yield new Normal(Double.parseDouble(p[1]), Double.parseDouble(p[2]));
                }
                default -> {
                    need(p, 1, spec);
                    yield new Fixed(Integer.parseInt(p[0]));
                }
            };
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad length distribution '" + spec
                    + "': expected fixed:N, uniform:A:B or normal:MEAN:STD");
        }
    }

    private static void need(String[] parts, int n, String spec) {
        if (parts.length != n) {
            throw new IllegalArgumentException("bad length distribution '" + spec
                    + "': expected fixed:N, uniform:A:B or normal:MEAN:STD");
        }
    }
}
