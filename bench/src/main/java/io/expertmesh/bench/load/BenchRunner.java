package io.expertmesh.bench.load;

import io.expertmesh.client.ExpertMeshClient;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sends a workload to a {@link BenchTarget} (a router over gRPC, or an OpenAI-compatible server) and records what
 * each request saw.
 *
 * <p>Open loop: with an {@link ArrivalProcess}, request {@code i} is due at the sum of the first {@code i} gaps
 * after the start (a late request goes out at once, so the offered rate holds on average). Closed loop: without
 * one, requests go out as fast as the concurrency limit allows. Both may be combined (a rate capped by a
 * concurrency limit, as vLLM's {@code --max-concurrency}).
 *
 * <p>Bounds: no request is sent after {@code duration}; requests still running then get {@code drainTimeout}
 * more and are then cancelled (recorded as CANCELLED). Warm-up requests run first, closed loop, and are not
 * recorded.
 */
public final class BenchRunner {
    private static final Logger log = LoggerFactory.getLogger(BenchRunner.class);

    /**
     * What to run.
     *
     * @param warmup         requests sent first and not recorded
     * @param requests       the measured requests
     * @param arrivals       open-loop arrivals, or {@code null} for closed loop
     * @param maxConcurrency most requests in flight, 0 for no limit (then {@code arrivals} is required)
     * @param duration       no request is sent after this
     * @param drainTimeout   how long running requests may take after the last is sent
     * @param ignoreEos      sent as {@code ignore_eos}, so outputs have the asked length
     * @param seed           seed of the arrival gaps
     */
    public record Plan(List<Workload.Item> warmup, List<Workload.Item> requests, ArrivalProcess arrivals,
                       int maxConcurrency, Duration duration, Duration drainTimeout, boolean ignoreEos, long seed) {
        public Plan {
            warmup = List.copyOf(warmup);
            requests = List.copyOf(requests);
            Objects.requireNonNull(duration, "duration");
            Objects.requireNonNull(drainTimeout, "drainTimeout");
            if (maxConcurrency < 0) {
                throw new IllegalArgumentException("--max-concurrency must be >= 1, got " + maxConcurrency);
            }
            if (arrivals == null && maxConcurrency == 0) {
                throw new IllegalArgumentException("give --request-rate, --max-concurrency, or both");
            }
            if (duration.isNegative() || duration.isZero() || drainTimeout.isNegative()) {
                throw new IllegalArgumentException("--duration must be positive and --drain-timeout >= 0");
            }
        }
    }

    /** The records of the measured requests (in completion order) and the measured duration. */
    public record Result(List<RequestRecord> records, long durationNanos, int notSent) {
    }

    /** Counters for a progress line; read from any thread. */
    public static final class Counters {
        final AtomicInteger sent = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();
        final AtomicLong outputTokens = new AtomicLong();
        volatile int total;
        volatile long startNanos = System.nanoTime();
        volatile boolean warmup;

        public int sent() {
            return sent.get();
        }

        public int done() {
            return done.get();
        }

        public int failed() {
            return failed.get();
        }

        public long outputTokens() {
            return outputTokens.get();
        }

        public int total() {
            return total;
        }

        public boolean warmup() {
            return warmup;
        }

        public double elapsedSeconds() {
            return (System.nanoTime() - startNanos) / 1e9;
        }
    }

    /**
     * The runner's time: when a request is due, when it started, when its tokens came. The system's by default;
     * tests pass a virtual one to check the schedule the runner keeps without measuring wall time.
     */
    interface Ticker {
        Ticker SYSTEM = new Ticker() {
            @Override
            public long nanoTime() {
                return System.nanoTime();
            }

            @Override
            public void parkUntil(long deadline) throws InterruptedException {
                for (long left = deadline - System.nanoTime(); left > 0; left = deadline - System.nanoTime()) {
                    LockSupport.parkNanos(left);
                    if (Thread.interrupted()) {
                        throw new InterruptedException();
                    }
                }
            }
        };

        long nanoTime();

        /** Returns at {@code deadline} (a {@link #nanoTime()} value) or later. */
        void parkUntil(long deadline) throws InterruptedException;
    }

    private final BenchTarget target;
    private final Ticker ticker;
    private final Counters counters = new Counters();
    /** Failure codes already logged with their message: the first of each kind says why, the rest are counted. */
    private final Set<Status.Code> logged = ConcurrentHashMap.newKeySet();

    /** A runner over routers' gRPC API. */
    public BenchRunner(ExpertMeshClient client) {
        this(new GrpcTarget(client), Ticker.SYSTEM);
    }

    public BenchRunner(BenchTarget target) {
        this(target, Ticker.SYSTEM);
    }

    BenchRunner(ExpertMeshClient client, Ticker ticker) {
        this(new GrpcTarget(client), ticker);
    }

    BenchRunner(BenchTarget target, Ticker ticker) {
        this.target = Objects.requireNonNull(target, "target");
        this.ticker = Objects.requireNonNull(ticker, "ticker");
    }

    /**
     * When each of {@code n} open-loop requests is due, in ns after the start: the running sums of the arrival
     * process's gaps drawn from {@code seed}. What {@link #run} keeps to (a late request goes out at once).
     */
    static long[] arrivalSchedule(ArrivalProcess arrivals, long seed, int n) {
        SplittableRandom random = new SplittableRandom(seed ^ 0x9E3779B97F4A7C15L);
        long[] due = new long[n];
        long t = 0;
        for (int i = 0; i < n; i++) {
            t += arrivals.nextGapNanos(random);
            due[i] = t;
        }
        return due;
    }

    /** Live counters of the phase in progress. */
    public Counters counters() {
        return counters;
    }

    /** Runs the warm-up, then the measured requests. */
    public Result run(Plan plan) throws InterruptedException {
        if (!plan.warmup().isEmpty()) {
            counters.warmup = true;
            int c = plan.maxConcurrency() > 0 ? plan.maxConcurrency() : Math.min(4, plan.warmup().size());
            Result w = execute(plan.warmup(), null, c, plan, "warmup");
            log.info("warm-up: {} requests, {} failed", w.records().size(),
                    w.records().stream().filter(r -> !r.ok()).count());
        }
        counters.warmup = false;
        return execute(plan.requests(), plan.arrivals(), plan.maxConcurrency(), plan, "bench");
    }

    private Result execute(List<Workload.Item> items, ArrivalProcess arrivals, int maxConcurrency, Plan plan,
                           String idPrefix) throws InterruptedException {
        counters.sent.set(0);
        counters.done.set(0);
        counters.failed.set(0);
        counters.outputTokens.set(0);
        counters.total = items.size();
        Semaphore slots = maxConcurrency > 0 ? new Semaphore(maxConcurrency) : null;
        ConcurrentLinkedQueue<RequestRecord> records = new ConcurrentLinkedQueue<>();
        Set<Call> running = ConcurrentHashMap.newKeySet();
        long[] schedule = arrivals == null ? null : arrivalSchedule(arrivals, plan.seed(), items.size());
        Object doneSignal = new Object();

        long start = ticker.nanoTime();
        counters.startNanos = start;
        long sendUntil = start + plan.duration().toNanos();
        int sent = 0;
        for (int i = 0; i < items.size(); i++) {
            if (schedule != null) {
                long due = start + schedule[i];
                if (due - sendUntil >= 0) {
                    break;
                }
                ticker.parkUntil(due);
            }
            if (slots != null) {
                long left = sendUntil - ticker.nanoTime();
                if (left <= 0 || !slots.tryAcquire(left, TimeUnit.NANOSECONDS)) {
                    break;
                }
            } else if (ticker.nanoTime() - sendUntil >= 0) {
                break;
            }
            Call call = new Call(items.get(i), slots, records, running, doneSignal);
            running.add(call);
            call.start(idPrefix + "-" + i, plan.ignoreEos());
            sent++;
            counters.sent.incrementAndGet();
        }
        long drainUntil = Math.max(ticker.nanoTime(), sendUntil) + plan.drainTimeout().toNanos();
        synchronized (doneSignal) {
            while (counters.done.get() < sent) {
                long left = drainUntil - ticker.nanoTime();
                if (left <= 0) {
                    break;
                }
                TimeUnit.NANOSECONDS.timedWait(doneSignal, left);
            }
        }
        if (counters.done.get() < sent) {
            log.warn("{} requests still running {} after the last was sent; cancelling them",
                    sent - counters.done.get(), plan.drainTimeout());
            running.forEach(c -> c.cancel("bench: drain timeout"));
            synchronized (doneSignal) {
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                while (counters.done.get() < sent && until - System.nanoTime() > 0) {
                    TimeUnit.NANOSECONDS.timedWait(doneSignal, until - System.nanoTime());
                }
            }
        }
        List<RequestRecord> out = new ArrayList<>(records);
        long end = out.stream().mapToLong(RequestRecord::endNanos).max().orElse(ticker.nanoTime());
        if (sent < items.size()) {
            log.warn("--duration {} reached: {} of {} requests were not sent", plan.duration(), items.size() - sent,
                    items.size());
        }
        return new Result(out, Math.max(0, end - start), items.size() - sent);
    }

    /** One request in flight: collects its timeline from the listener callbacks. */
    private final class Call implements StreamListener {
        private final Workload.Item item;
        private final Semaphore slots;
        private final ConcurrentLinkedQueue<RequestRecord> records;
        private final Set<Call> running;
        private final Object doneSignal;
        private final List<long[]> chunks = new ArrayList<>(); // {nanos, tokens}
        private long startNanos;
        private volatile BenchTarget.InFlight handle;
        private boolean ended;

        Call(Workload.Item item, Semaphore slots, ConcurrentLinkedQueue<RequestRecord> records, Set<Call> running,
             Object doneSignal) {
            this.item = item;
            this.slots = slots;
            this.records = records;
            this.running = running;
            this.doneSignal = doneSignal;
        }

        void start(String requestId, boolean ignoreEos) {
            synchronized (this) {
                startNanos = ticker.nanoTime();
            }
            try {
                handle = target.start(item, requestId, ignoreEos, this);
            } catch (RuntimeException e) {
                onError(Status.Code.UNKNOWN, e.toString());
            }
        }

        void cancel(String reason) {
            BenchTarget.InFlight h = handle;
            if (h != null) {
                h.cancel(reason);
            }
        }

        @Override
        public synchronized void onTokens(int count) {
            chunks.add(new long[] {ticker.nanoTime(), count});
            counters.outputTokens.addAndGet(count);
        }

        @Override
        public void onFinished(int promptTokens, int cachedPromptTokens, int outputTokens) {
            long now = ticker.nanoTime();
            if (outputTokens >= 0) {
                synchronized (this) {
                    long before = chunks.stream().mapToLong(c -> c[1]).sum();
                    ChunkTokens.fit(chunks, outputTokens, now);
                    counters.outputTokens.addAndGet(outputTokens - before);
                }
            }
            end(now, promptTokens, cachedPromptTokens, null);
        }

        @Override
        public void onError(Status.Code code, String message) {
            long now = ticker.nanoTime();
            if (logged.add(code)) {
                log.warn("a request failed, {}: {} (further {} failures are counted, not logged)", code, message,
                        code);
            }
            end(now, item.promptIds().length, 0, code == Status.Code.OK ? Status.Code.UNKNOWN : code);
        }

        private void end(long now, int promptTokens, int cached, Status.Code error) {
            RequestRecord r;
            synchronized (this) {
                if (ended) {
                    return;
                }
                ended = true;
                long[] at = new long[chunks.size()];
                int[] n = new int[chunks.size()];
                for (int i = 0; i < at.length; i++) {
                    at[i] = chunks.get(i)[0];
                    n[i] = (int) chunks.get(i)[1];
                }
                r = new RequestRecord(startNanos, at, n, now, promptTokens, cached, error);
            }
            running.remove(this);
            if (slots != null) {
                slots.release();
            }
            if (error != null) {
                counters.failed.incrementAndGet();
            }
            records.add(r); // before the count: the waiting thread copies the records once the count is reached
            counters.done.incrementAndGet();
            synchronized (doneSignal) {
                doneSignal.notifyAll();
            }
        }
    }
}
