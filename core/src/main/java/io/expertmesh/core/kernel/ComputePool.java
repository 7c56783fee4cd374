package io.expertmesh.core.kernel;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
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
 * <p>Each participant (the caller is participant 0, worker {@code i} is {@code i + 1}) owns a contiguous range of
 * the task indices and runs it front to back; one that runs out takes the other ranges' last tasks. Why ranges
 * rather than one shared counter: a matmul's tasks are row ranges in order, and a thread that goes on to the next
 * rows keeps its memory stream going (the kernels prefetch a few KiB ahead along the rows, and so does the
 * hardware), where one that jumps to rows far away starts a new stream, and what it prefetched past its last rows
 * was read for a thread that then reads it again. With one shared counter the two threads of a batch-1 product
 * took alternate chunks: an int8 704x1024 product in 8 chunks on 2 threads took 22-23 us against 18 with each
 * thread's chunks in a row (README, "CPU performance").
 *
 * <p>Participant {@code p}'s word packs {@code generation << 36 | front << 18 | back}: its range's tasks not yet
 * claimed are {@code [front, back)}. The owner claims {@code front} with a CAS to {@code front + 1}, a thief
 * {@code back - 1} with a CAS to {@code back - 1}. Within a generation the front only grows and the back only
 * shrinks, so a word never takes the same value twice; a generation is over only when every task has run, so every
 * word of it is empty then, before the owner writes the next generation's task. So a CAS that succeeds proves that
 * the task the claimer read after the word belongs to generation {@code g}.
 *
 * <p>Nested or concurrent calls (a task calling {@code parallelFor}, or a second thread while one call is in
 * flight) do not wait for the pool: they run their tasks inline on their own thread, so they cannot deadlock.
 */
public final class ComputePool implements AutoCloseable {
    /** How long an idle worker spins before parking; the gap between a token's kernels is shorter. */
    public static final long DEFAULT_SPIN_NANOS = 50_000;

    /** Bits of a task index in a range word; a call with more tasks runs them in rounds of at most this many. */
    private static final int INDEX_BITS = 18;
    static final int MAX_TASKS_PER_ROUND = (1 << INDEX_BITS) - 1;
    private static final long INDEX_MASK = (1L << INDEX_BITS) - 1;
    private static final int GENERATION_MASK = (1 << (64 - 2 * INDEX_BITS)) - 1;
    /** Longs between two participants' words: each on its own cache line, so owners' claims do not collide. */
    private static final int WORD_STRIDE = 8;
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final int threads;
    private final long spinNanos;
    private final Worker[] workers;

    /** Participant {@code p}'s range word at {@code p * WORD_STRIDE}. */
    private final AtomicLongArray ranges;
    private final AtomicInteger completed = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile IntConsumer task;
    private volatile boolean closed;
    /**
     * Generation of the last published call (its low bits, {@link #GENERATION_MASK}, in the words); touched only by
     * the thread that holds {@link #busy}.
     */
    private int generation;

    private ComputePool(int threads, long spinNanos) {
        this.threads = threads;
        this.spinNanos = spinNanos;
        this.workers = new Worker[threads - 1];
        this.ranges = new AtomicLongArray(threads * WORD_STRIDE);
        int poolId = POOL_IDS.incrementAndGet();
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
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
        if (tasks > MAX_TASKS_PER_ROUND) {
            // Every round runs even when an earlier one threw, so every task still runs once.
            Throwable thrown = null;
            for (int base = 0; base < tasks; base += MAX_TASKS_PER_ROUND) {
                int first = base;
                try {
                    parallelFor(Math.min(MAX_TASKS_PER_ROUND, tasks - base), i -> task.accept(first + i));
                } catch (Throwable e) {
                    thrown = thrown == null ? e : thrown;
                }
            }
            if (thrown != null) {
                throw rethrow(thrown);
            }
            return;
        }
        if (tasks == 1 || workers.length == 0 || !busy.compareAndSet(false, true)) {
            runInline(tasks, task);
            return;
        }
        try {
            int g = ++generation & GENERATION_MASK;
            failure.set(null);
            completed.set(0);
            this.task = task;
            for (int p = 0; p < threads; p++) {
                ranges.set(p * WORD_STRIDE, pack(g, rangeStart(tasks, p), rangeStart(tasks, p + 1)));
            }
            for (Worker w : workers) {
                if (w.sleeping) {
                    LockSupport.unpark(w.thread);
                }
            }
            claimAndRun(g, 0);
            awaitCompletion(tasks);
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

    /** First task of participant {@code p}'s range ({@code tasks} for {@code p == threads}). */
    private int rangeStart(int tasks, int p) {
        return (int) ((long) tasks * p / threads);
    }

    /**
     * Runs tasks of generation {@code g} until none is left: participant {@code me}'s own range from the front,
     * then the others' from the back. Shared by the caller and workers.
     */
    private void claimAndRun(int g, int me) {
        for (int k = 0; k < threads; k++) {
            drain(g, (me + k) % threads, k == 0);
        }
    }

    /**
     * Claims and runs participant {@code p}'s tasks of generation {@code g}, from the front (its owner) or the back,
     * until its range is empty or its word belongs to another generation (one that is over, or one being published).
     */
    private void drain(int g, int p, boolean front) {
        int at = p * WORD_STRIDE;
        while (true) {
            long c = ranges.get(at);
            int f = (int) ((c >>> INDEX_BITS) & INDEX_MASK);
            int b = (int) (c & INDEX_MASK);
            if (generationOf(c) != g || f >= b) {
                return;
            }
            IntConsumer t = task;
            int i = front ? f : b - 1;
            if (!ranges.compareAndSet(at, c, front ? pack(g, f + 1, b) : pack(g, f, b - 1))) {
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

    private static long pack(int generation, int front, int back) {
        return ((long) generation << (2 * INDEX_BITS)) | ((long) front << INDEX_BITS) | back;
    }

    private static int generationOf(long word) {
        return (int) (word >>> (2 * INDEX_BITS));
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
        /** This worker's participant index (the caller is 0). */
        final int me;
        Thread thread;
        volatile boolean sleeping;

        Worker(int me) {
            this.me = me;
        }

        /** The generation of this worker's range word: every word moves to a new call's generation. */
        private int generation() {
            return generationOf(ranges.get(me * WORD_STRIDE));
        }

        @Override
        public void run() {
            int seen = 0;
            while (!closed) {
                int g = generation();
                if (g != seen) {
                    seen = g;
                    claimAndRun(g, me);
                    continue;
                }
                idle(seen);
            }
        }

        /** Spins until a new generation or the spin budget runs out, then parks. */
        private void idle(int seen) {
            long deadline = System.nanoTime() + spinNanos;
            int spins = 0;
            while (!closed && generation() == seen) {
                if ((++spins & 63) == 0 && System.nanoTime() > deadline) {
                    sleeping = true;
                    // Re-check after announcing: the caller reads `sleeping` after publishing, so either it
                    // sees the flag and unparks us, or we see its generation here.
                    if (!closed && generation() == seen) {
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
