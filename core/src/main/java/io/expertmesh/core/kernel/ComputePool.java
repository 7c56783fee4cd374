package io.expertmesh.core.kernel;

import java.util.function.IntConsumer;

/**
 * Runs {@code tasks} independent pieces of work on a fixed set of threads and returns when all are done.
 * The caller's thread takes part. Placeholder implementation: runs everything on the caller.
 */
public final class ComputePool implements AutoCloseable {
    private final int threads;

    private ComputePool(int threads) {
        this.threads = threads;
    }

    public static ComputePool create(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        return new ComputePool(threads);
    }

    public int threads() {
        return threads;
    }

    /** Calls {@code task.accept(i)} for every {@code i < tasks}, spread over the pool's threads. */
    public void parallelFor(int tasks, IntConsumer task) {
        for (int i = 0; i < tasks; i++) {
            task.accept(i);
        }
    }

    @Override
    public void close() {
    }
}
