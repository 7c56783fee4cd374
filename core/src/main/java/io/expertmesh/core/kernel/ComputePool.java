package io.expertmesh.core.kernel;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Runs {@code tasks} independent pieces of work on a fixed set of threads and returns when all are done.
 * The caller's thread takes part, so a pool of {@code threads} owns {@code threads - 1} daemon workers.
 *
 * <p>Why not an {@link java.util.concurrent.ExecutorService}: decode calls this hundreds of times per token with
 * 10-50 µs of work each, so a queue, futures and a wake-up per task would cost as much as the work. Here one call
 * publishes a <em>generation</em> and every participant claims task indices from one atomic word; workers spin
 * for a short while after each generation (the next call usually follows within microseconds), then park.
 * Apart from the caller's lambda, a call allocates nothing.
 *
 * <p>The control word packs {@code generation << 32 | nextIndex}. A worker claims index {@code i} with a CAS
 * from {@code (g, i)} to {@code (g, i + 1)}; because the word only grows and the owner closes a generation
 * (index set to {@link #CLOSED}) before writing the next one's task, a CAS that succeeds proves the task and
 * task count the worker read belong to generation {@code g}.
 *
 * <p>Nested or concurrent calls (a task calling {@code parallelFor}, or a second thread while one call is in
 * flight) do not wait for the pool: they run their tasks inline on their own thread, so they cannot deadlock.
 */
public final class ComputePool implements AutoCloseable {
    /** How long an idle worker spins before parking; the gap between a token's kernels is shorter. */
    public static final long DEFAULT_SPIN_NANOS = 50_000;

    private static final int CLOSED = Integer.MAX_VALUE;
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final int threads;
    private final long spinNanos;
    private final Worker[] workers;

    private final AtomicLong control = new AtomicLong();
    private final AtomicInteger completed = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile IntConsumer task;
    private volatile int taskCount;
    private volatile boolean closed;
    /** Generation of the last published call; touched only by the thread that holds {@link #busy}. */
    private int generation;

    private ComputePool(int threads, long spinNanos) {
        this.threads = threads;
        this.spinNanos = spinNanos;
        this.workers = new Worker[threads - 1];
        int poolId = POOL_IDS.incrementAndGet();
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker();
            Thread t = Thread.ofPlatform()
                    .name("expertmesh-compute-" + poolId + "-" + (i + 1))
                    .daemon(true)
                    .unstarted(workers[i]);
            workers[i].thread = t;
        }
        for (Worker w : workers) {
            w.thread.start();
        }
    }

    public static ComputePool create(int threads) {
        return create(threads, DEFAULT_SPIN_NANOS);
    }

    /** A pool whose idle workers spin {@code spinNanos} before parking (0: park at once). */
    public static ComputePool create(int threads, long spinNanos) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        if (spinNanos < 0) {
            throw new IllegalArgumentException("spinNanos must be >= 0, got " + spinNanos);
        }
        return new ComputePool(threads, spinNanos);
    }

    public int threads() {
        return threads;
    }

    /**
     * Calls {@code task.accept(i)} exactly once for every {@code i < tasks}, spread over the pool's threads, and
     * returns when all have returned. If tasks throw, the first exception is rethrown here after every task has
     * ended (a checked one wrapped in a {@link RuntimeException}).
     *
     * @throws IllegalStateException if the pool is closed
     */
    public void parallelFor(int tasks, IntConsumer task) {
        if (closed) {
            throw new IllegalStateException("compute pool is closed");
        }
        if (tasks <= 0) {
            return;
        }
        if (tasks == 1 || workers.length == 0 || !busy.compareAndSet(false, true)) {
            runInline(tasks, task);
            return;
        }
        try {
            int g = ++generation;
            failure.set(null);
            completed.set(0);
            this.taskCount = tasks;
            this.task = task;
            control.set(pack(g, 0));
            for (Worker w : workers) {
                if (w.sleeping) {
                    LockSupport.unpark(w.thread);
                }
            }
            claimAndRun(g);
            awaitCompletion(tasks);
            control.set(pack(g, CLOSED));
            this.task = null;
        } finally {
            busy.set(false);
        }
        Throwable t = failure.getAndSet(null);
        if (t != null) {
            throw rethrow(t);
        }
    }

    private static void runInline(int tasks, IntConsumer task) {
        for (int i = 0; i < tasks; i++) {
            task.accept(i);
        }
    }

    /** Claims and runs tasks of generation {@code g} until none is left; shared by the caller and workers. */
    private void claimAndRun(int g) {
        while (true) {
            long c = control.get();
            int i = (int) c;
            if ((int) (c >>> 32) != g || i >= taskCount) {
                return;
            }
            IntConsumer t = task;
            if (!control.compareAndSet(c, c + 1)) {
                continue;
            }
            try {
                t.accept(i);
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
            completed.incrementAndGet();
        }
    }

    private void awaitCompletion(int tasks) {
        int spins = 0;
        while (completed.get() != tasks) {
            if (++spins < 20_000) {
                Thread.onSpinWait();
            } else {
                // A worker holding a task was descheduled (likely on a loaded 2-core machine): let it run.
                Thread.yield();
            }
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException re) {
            return re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new RuntimeException(t);
    }

    private static long pack(int generation, int index) {
        return ((long) generation << 32) | (index & 0xFFFFFFFFL);
    }

    /** Stops the workers; calls after this throw. Must not be called while a {@code parallelFor} is in flight. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Worker w : workers) {
            LockSupport.unpark(w.thread);
        }
        for (Worker w : workers) {
            try {
                w.thread.join(TimeUnit.SECONDS.toMillis(1));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker implements Runnable {
        Thread thread;
        volatile boolean sleeping;

        @Override
        public void run() {
            int seen = 0;
            while (!closed) {
                int g = (int) (control.get() >>> 32);
                if (g != seen) {
                    seen = g;
                    claimAndRun(g);
                    continue;
                }
                idle(seen);
            }
        }

        /** Spins until a new generation or the spin budget runs out, then parks. */
        private void idle(int seen) {
            long deadline = System.nanoTime() + spinNanos;
            int spins = 0;
            while (!closed && (int) (control.get() >>> 32) == seen) {
                if ((++spins & 63) == 0 && System.nanoTime() > deadline) {
                    sleeping = true;
                    // Re-check after announcing: the caller reads `sleeping` after publishing, so either it
                    // sees the flag and unparks us, or we see its generation here.
                    if (!closed && (int) (control.get() >>> 32) == seen) {
                        LockSupport.park(this);
                    }
                    sleeping = false;
                    return;
                }
                Thread.onSpinWait();
            }
        }
    }
}
