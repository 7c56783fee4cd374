package io.expertmesh.router.engine;

/**
 * Decides, step by step, whether a step with remote experts runs as two micro-batches or one, from the step times
 * it has measured. Two micro-batches hide one's expert dispatch behind the other's compute, which pays when the
 * dispatch is a real wait (a network hop); on one host, or with small batches, the two halves only compete for the
 * same cores and the step is slower (measured 0.58-0.83x). Which case holds depends on the batch size, the network
 * and the load, so it is measured rather than configured.
 *
 * <p>Steps are grouped by their token count in powers of two. Within a group each choice is tried
 * {@link #WARMUP} times first (alternating); after that the faster one by a moving average of nanoseconds per token
 * is taken, and every {@link #EXPLORE_EVERY}-th step of the group tries the other once, so a change (a slower
 * network, a busier machine) is noticed. Both choices compute the same outputs, so this only moves speed.
 *
 * <p>Called from the engine thread only; not thread-safe.
 */
public final class SplitChooser {
    /** Samples of each choice a group takes before it trusts the averages. */
    static final int WARMUP = 3;
    /** After warm-up, one step in this many tries the slower choice again. */
    static final int EXPLORE_EVERY = 32;
    /** Weight of the newest sample in the moving average. */
    private static final double ALPHA = 0.25;
    private static final int GROUPS = 32;

    private final boolean adaptive;
    private final double[] splitNanosPerToken = new double[GROUPS];
    private final double[] wholeNanosPerToken = new double[GROUPS];
    private final int[] splitSamples = new int[GROUPS];
    private final int[] wholeSamples = new int[GROUPS];
    private final long[] decisions = new long[GROUPS];

    private SplitChooser(boolean adaptive) {
        this.adaptive = adaptive;
    }

    /** Chooses by measured step time (see the class comment). */
    public static SplitChooser adaptive() {
        return new SplitChooser(true);
    }

    /** Always two micro-batches (benchmarks that compare the two). */
    public static SplitChooser always() {
        return new SplitChooser(false);
    }

    /** Whether a step of {@code tokens} tokens (from two or more sequences) should run as two micro-batches. */
    public boolean split(int tokens) {
        if (!adaptive) {
            return true;
        }
        int g = group(tokens);
        long n = decisions[g]++;
        if (splitSamples[g] < WARMUP || wholeSamples[g] < WARMUP) {
            return splitSamples[g] <= wholeSamples[g];
        }
        boolean splitFaster = splitNanosPerToken[g] < wholeNanosPerToken[g];
        return n % EXPLORE_EVERY == 0 ? !splitFaster : splitFaster;
    }

    /** Records how long a step of {@code tokens} tokens took, run split or not. */
    public void record(int tokens, boolean split, long nanos) {
        if (!adaptive || tokens <= 0 || nanos < 0) {
            return;
        }
        int g = group(tokens);
        double perToken = (double) nanos / tokens;
        if (split) {
            splitNanosPerToken[g] = splitSamples[g]++ == 0 ? perToken
                    : splitNanosPerToken[g] + ALPHA * (perToken - splitNanosPerToken[g]);
        } else {
            wholeNanosPerToken[g] = wholeSamples[g]++ == 0 ? perToken
                    : wholeNanosPerToken[g] + ALPHA * (perToken - wholeNanosPerToken[g]);
        }
    }

    private static int group(int tokens) {
        return Math.min(GROUPS - 1, 31 - Integer.numberOfLeadingZeros(Math.max(1, tokens)));
    }
}
