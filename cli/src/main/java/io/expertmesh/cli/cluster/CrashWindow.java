package io.expertmesh.cli.cluster;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The recent crashes of one child, for its {@link RestartPolicy}: how many fell within the last {@code window}.
 * Times are {@link System#nanoTime()}-like values passed in, so the counting is testable without waiting.
 */
final class CrashWindow {
    private final long windowNanos;
    private final Deque<Long> crashes = new ArrayDeque<>();

    CrashWindow(Duration window) {
        this.windowNanos = window.toNanos();
    }

    /** Records a crash at {@code nowNanos}; returns the crashes within the window up to now, this one included. */
    synchronized int record(long nowNanos) {
        crashes.addLast(nowNanos);
        while (nowNanos - crashes.peekFirst() > windowNanos) {
            crashes.removeFirst();
        }
        return crashes.size();
    }
}
