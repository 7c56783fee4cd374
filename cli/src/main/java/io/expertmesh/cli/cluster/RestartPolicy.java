package io.expertmesh.cli.cluster;

import java.time.Duration;
import java.util.Objects;

/**
 * When a {@link Supervisor} restarts a child that died on its own, and when it gives up: a child may crash
 * {@code maxRestarts} times within {@code window} and is restarted after each, waiting
 * {@code initialBackoff · 2^(crashes in the window − 1)}, at most {@code maxBackoff}; one more crash within the
 * window is a crash loop, and the supervisor gives up on it. Crashes older than the window are forgotten, so a
 * child that ran well for a while starts again from the shortest wait.
 *
 * @param maxRestarts    restarts allowed within the window (0: the first crash gives up)
 * @param window         how far back crashes count
 * @param initialBackoff the wait before the first restart
 * @param maxBackoff     the longest wait
 */
public record RestartPolicy(int maxRestarts, Duration window, Duration initialBackoff, Duration maxBackoff) {
    public RestartPolicy {
        Objects.requireNonNull(window, "window");
        Objects.requireNonNull(initialBackoff, "initialBackoff");
        Objects.requireNonNull(maxBackoff, "maxBackoff");
        if (maxRestarts < 0) {
            throw new IllegalArgumentException("maxRestarts must be >= 0, got " + maxRestarts);
        }
        if (window.isNegative() || window.isZero() && maxRestarts > 0) {
            throw new IllegalArgumentException("the restart window must be positive, got " + window);
        }
        if (initialBackoff.isNegative() || maxBackoff.compareTo(initialBackoff) < 0) {
            throw new IllegalArgumentException("need 0 <= initialBackoff <= maxBackoff, got " + initialBackoff
                    + " and " + maxBackoff);
        }
    }

    /** No restarts: the first child to die on its own is given up on (a supervisor without a policy). */
    public static RestartPolicy never() {
        return new RestartPolicy(0, Duration.ofSeconds(1), Duration.ZERO, Duration.ZERO);
    }

    /** {@code maxRestarts} within {@code window}, waiting 1 s, 2 s, 4 s, … up to 30 s between them. */
    public static RestartPolicy of(int maxRestarts, Duration window) {
        return new RestartPolicy(maxRestarts, window, Duration.ofSeconds(1), Duration.ofSeconds(30));
    }

    /** Whether a child with {@code crashes} crashes within the window (this one included) is restarted. */
    public boolean restarts(int crashes) {
        return crashes <= maxRestarts;
    }

    /** The wait before restarting a child with {@code crashes} crashes within the window (this one included). */
    public Duration backoff(int crashes) {
        if (crashes < 1) {
            throw new IllegalArgumentException("crashes must be >= 1, got " + crashes);
        }
        // doubling from initialBackoff; the shift is capped so it cannot overflow before the cap applies
        long nanos = initialBackoff.toNanos();
        for (int i = 1; i < crashes && nanos < maxBackoff.toNanos(); i++) {
            nanos *= 2;
        }
        return Duration.ofNanos(Math.min(nanos, maxBackoff.toNanos()));
    }
}
