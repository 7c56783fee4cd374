package io.expertmesh.router.engine;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.tensor.Quantization;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.generate.TokenStepper;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.sample.FinishReason;
import io.expertmesh.core.sample.SamplerScratch;
import io.expertmesh.core.sample.StopDecision;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.kvcache.BlockKey;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.KvStoreStats;
import io.expertmesh.kvcache.NoopKvBlockStore;
import io.expertmesh.router.kv.BlockHash;
import io.expertmesh.router.kv.BlockHasher;
import io.expertmesh.router.kv.KvCacheManager;
import io.expertmesh.router.kv.PagedKvStorage;
import io.expertmesh.router.kv.RemoteKvTier;
import io.expertmesh.router.scheduler.ScheduledChunk;
import io.expertmesh.router.scheduler.Scheduler;
import io.expertmesh.router.scheduler.SchedulerConfig;
import io.expertmesh.router.scheduler.SequenceState;
import io.expertmesh.router.scheduler.SequenceStatus;
import io.expertmesh.router.experts.ExpertsUnavailableException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The router's step loop: continuous batching over one model. Requests are submitted from any thread; one engine
 * thread admits them, asks the {@link Scheduler} for the step's chunks, runs them through the model together
 * (each weight read once per step), samples each sequence's next token and hands it to its listener.
 *
 * <p>Every sequence's logits row is computed by the same operations whatever else is in the step (the kernels
 * and the forward pass are batch-invariant), and each sequence samples with its own generator, so a request's
 * output does not depend on the other requests.
 *
 * <p>A failure inside a step ends the requests of that step with an error and the engine keeps serving. What
 * belongs to one request alone (its sampling, stop rules and detokenising, its listener) can fail only that
 * request: it ends with an error, its KV blocks are freed, and the others in the step go on as if it had not
 * been there.
 *
 * <p><b>Distributed KV tier</b> (when a store other than {@link NoopKvBlockStore} is given and prefix caching is
 * on): {@link #submit} looks the prompt's prefix up in the store on the caller's thread, so the step loop never
 * waits on the network; the hits are adopted at admission after the local prefix hit. Full prompt blocks
 * computed here are published from the step loop (a copy, then the store's background thread writes them).
 * The engine does not own the store: whoever made it closes it after the engine.
 */
public final class Engine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Engine.class);
    /** How long the idle loop sleeps before re-checking (submissions wake it at once). */
    private static final long IDLE_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final LoadedModel model;
    private final Transformer transformer;
    private final ModelTokenizer tokenizer;
    private final EngineConfig config;
    private final Scheduler scheduler;
    private final KvCacheManager kv;
    private final RemoteKvTier remote;
    private final int totalBlocks;
    private final Set<Integer> eosIds;
    private final SamplerScratch samplerScratch = new SamplerScratch();
    private final ConcurrentLinkedQueue<Active> inbox = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Active> cancels = new ConcurrentLinkedQueue<>();
    /** Requests submitted and not yet scheduled: bounds the waiting queue, counted from any thread. */
    private final AtomicInteger queued = new AtomicInteger();
    /** Requests submitted and not yet ended: what a drain waits for. */
    private final AtomicInteger unfinished = new AtomicInteger();
    /** Signalled when {@link #unfinished} drops to zero (a drain waits for it). */
    private final ReentrantLock idleLock = new ReentrantLock();
    private final Condition idle = idleLock.newCondition();
    private final Map<SequenceState, Active> active = new IdentityHashMap<>();
    private final Map<String, Long> finishedCounts = new TreeMap<>();
    private final Thread thread;
    private final StepObserver stepObserver;
    private volatile boolean draining;
    private volatile boolean stopped;
    private volatile boolean cancelEverything;
    private volatile EngineStatus status;
    private long steps;
    private long generated;
    private long arrivals;
    private float[] logits = new float[0];
    private float[] logits2 = new float[0];
    /** Two micro-batches in the steps where they pay (experts remote); null: one batch. */
    private final MicroBatching microBatching;
    private final ExecutorService microBatchThread;
    private final ForwardBackend backend;
    private final ForwardBackend.Runner firstRunner;
    private final ForwardBackend.Runner secondRunner;

    /** An engine with no distributed KV tier, one batch per step, no observer, on the CPU. */
    public Engine(LoadedModel model, EngineConfig config) {
        this(model, config, EngineOptions.DEFAULT);
    }

    /**
     * Splitting a step of two or more sequences into two micro-batches run on two threads that share
     * {@code lock} for compute (a remote expert dispatch releases it while waiting), so the network hop of one
     * hides behind the other's compute; {@code chooser} decides per step whether that pays.
     *
     * @param lock the compute lock shared with the expert dispatch
     * @param chooser whether a step splits
     */
    public record MicroBatching(ReentrantLock lock, SplitChooser chooser) {
        /** Split where measured step times say it pays ({@link SplitChooser#adaptive()}). */
        public MicroBatching(ReentrantLock lock) {
            this(lock, SplitChooser.adaptive());
        }

        /** Split every step of two or more sequences. */
        public static MicroBatching always(ReentrantLock lock) {
            return new MicroBatching(lock, SplitChooser.always());
        }
    }

    /** An engine with what {@code options} plugs in: the KV tier, micro-batching, an observer, the backend. */
    public Engine(LoadedModel model, EngineConfig config, EngineOptions options) {
        KvBlockStore store = options.store();
        MicroBatching microBatching = options.microBatching();
        StepObserver stepObserver = options.stepObserver();
        ForwardBackend.Factory backend = options.backend();
        this.stepObserver = stepObserver;
        this.model = model;
        this.microBatching = microBatching;
        this.microBatchThread = microBatching == null ? null : Executors.newSingleThreadExecutor(
                Thread.ofPlatform().name("expertmesh-microbatch").daemon().factory());
        this.transformer = model.transformer();
        this.tokenizer = model.tokenizer().orElse(null);
        this.config = config;
        ModelConfig c = model.config();
        this.totalBlocks = PagedKvStorage.blocksFor(config.kvBudgetBytes(), c.numLayers(), c.kvRowWidth(),
                config.blockSize());
        if (totalBlocks < 1) {
            throw new IllegalArgumentException("kv cache budget of " + config.kvBudgetBytes()
                    + " bytes holds no block of " + config.blockSize() + " tokens");
        }
        PagedKvStorage storage = new PagedKvStorage(c.numLayers(), c.kvRowWidth(), config.blockSize(), totalBlocks);
        this.backend = backend.create(transformer, totalBlocks, config.blockSize(), storage::block);
        storage.onHostWrite(this.backend::hostWrote);
        this.firstRunner = this.backend.newRunner();
        this.secondRunner = microBatching == null ? null : this.backend.newRunner();
        LOG.info("Engine: {}", this.backend.describe());
        this.kv = new KvCacheManager(storage, modelSeed(model, config.blockSize()), config.prefixCaching());
        boolean tier = !(store instanceof NoopKvBlockStore) && config.prefixCaching();
        if (!(store instanceof NoopKvBlockStore) && !config.prefixCaching()) {
            LOG.warn("Prefix caching is off: the distributed KV tier is not used");
        }
        this.remote = tier ? new RemoteKvTier(store, kv, RemoteKvTier.DEFAULT_RECENT_CAPACITY) : null;
        this.scheduler = new Scheduler(new SchedulerConfig(config.maxBatchedTokens(), config.maxRunning(),
                Integer.MAX_VALUE), kv);
        Set<Integer> eos = new HashSet<>(c.eosTokenIds());
        if (tokenizer != null) {
            eos.addAll(tokenizer.stopIds());
        }
        this.eosIds = Set.copyOf(eos);
        this.status = new EngineStatus(false, 0, 0, config.maxWaiting(), kv.stats(), 0, 0, 0, Map.of(),
                remote == null ? null : new EngineStatus.Remote(0, 0, 0, 0));
        this.thread = Thread.ofPlatform().name("expertmesh-engine").daemon().unstarted(this::loop);
        LOG.info("Engine: {} KV blocks of {} tokens ({} MiB), {} tokens and {} sequences per step, queue {}, "
                        + "prefix caching {}, distributed KV tier {}", totalBlocks, config.blockSize(),
                config.kvBudgetBytes() >> 20, config.maxBatchedTokens(), config.maxRunning(), config.maxWaiting(),
                config.prefixCaching(), remote == null ? "off" : store.getClass().getSimpleName());
        thread.start();
    }

    /**
     * Seeds block hashes with what makes KV blocks interchangeable: the model's identity (its config, tensors and
     * weights' digest; never its path, which two containers with other weights may share), how its weights are held
     * (int8 weights give other KV than the same checkpoint unquantized), dtype and KV layout.
     */
    private static long modelSeed(LoadedModel model, int blockSize) {
        ModelConfig c = model.config();
        String dtype = model.quantization() == Quantization.NONE ? "f32"
                : "f32/" + model.quantization().name().toLowerCase(java.util.Locale.ROOT) + "-weights";
        if (model.fp8AsBf16()) {
            dtype += "/fp8-as-bf16";   // the same FP8 checkpoint read natively gives (slightly) other KV
        }
        return BlockHasher.seedOf(model.identity().hex(), dtype, blockSize,
                c.architecture() + "/" + c.numLayers() + "x" + c.kvRowWidth());
    }

    /** The model's vocabulary size: the bound of valid token ids. */
    public int vocabSize() {
        return model.config().vocabSize();
    }

    public EngineConfig config() {
        return config;
    }

    /** A handle to cancel a submitted request. */
    public interface Handle {
        void cancel();
    }

    /**
     * Queues a request. Throws {@link EngineRejection} when the queue is full, the engine is draining, or the
     * request could never fit the KV cache.
     */
    public Handle submit(EngineRequest request, SequenceListener listener) {
        if (draining || stopped) {
            throw new EngineRejection(EngineRejection.Reason.DRAINING, "the server is draining; retry elsewhere");
        }
        ModelConfig c = model.config();
        int maxTotal = Math.min(c.maxPositions(), request.prompt().length + request.params().maxTokens());
        long blocksNeeded = (maxTotal + config.blockSize() - 1L) / config.blockSize();
        if (blocksNeeded > totalBlocks) {
            throw new EngineRejection(EngineRejection.Reason.TOO_LARGE, "prompt plus max_tokens (" + maxTotal
                    + " tokens) needs " + blocksNeeded + " KV blocks; the cache holds " + totalBlocks);
        }
        if (queued.incrementAndGet() > config.maxWaiting()) {
            queued.decrementAndGet();
            throw new EngineRejection(EngineRejection.Reason.QUEUE_FULL, "the waiting queue is full ("
                    + config.maxWaiting() + " requests); retry later");
        }
        long arrival = System.nanoTime();
        RemoteKvTier.Hits hits;
        try {
            // On the caller's (gRPC) thread: the step loop never waits on the store. Best effort: a miss on error.
            hits = remote == null ? RemoteKvTier.Hits.NONE : remote.lookup(request.prompt());
        } catch (RuntimeException e) {
            LOG.warn("Distributed KV lookup for {} failed; computing the prompt", request.requestId(), e);
            hits = RemoteKvTier.Hits.NONE;
        }
        Active a = new Active(request, listener, maxTotal, arrival);
        a.remoteHits = hits;
        unfinished.incrementAndGet();
        inbox.add(a);
        LockSupport.unpark(thread);
        return a;
    }

    /** Stops admitting; running and queued requests continue. */
    public void startDrain() {
        draining = true;
        LockSupport.unpark(thread);
    }

    /** Waits until nothing is queued or running; true if that happened within the timeout. */
    public boolean awaitIdle(long timeout, TimeUnit unit) throws InterruptedException {
        long nanos = unit.toNanos(timeout);
        idleLock.lock();
        try {
            while (unfinished.get() != 0) {
                if (nanos <= 0) {
                    return false;
                }
                nanos = idle.awaitNanos(nanos);
            }
            return true;
        } finally {
            idleLock.unlock();
        }
    }

    /** One request ended (finished, failed or cancelled): wakes {@link #awaitIdle} when it was the last. */
    private void requestEnded() {
        if (unfinished.decrementAndGet() == 0) {
            idleLock.lock();
            try {
                idle.signalAll();
            } finally {
                idleLock.unlock();
            }
        }
    }

    /** Cancels every queued and running request (the end of a drain's grace period). */
    public void cancelAll() {
        for (Active a : inbox) {
            a.cancel();
        }
        // The engine thread owns `active`; it cancels those on its next loop.
        cancelEverything = true;
        LockSupport.unpark(thread);
    }

    public EngineStatus status() {
        return status;
    }

    /**
     * The distributed-tier keys of {@code prompt}'s reusable full blocks, as a lookup at submit asks for them
     * (any thread; for diagnostics and tests).
     */
    public List<BlockKey> blockKeys(int[] prompt) {
        BlockHash[] h = kv.prefixHashes(prompt, kv.maxReusableBlocks(prompt.length));
        List<BlockKey> keys = new ArrayList<>(h.length);
        for (BlockHash x : h) {
            keys.add(new BlockKey(x.hi(), x.lo()));
        }
        return keys;
    }

    /** The distributed KV store's counters (any thread), or null when the tier is off. */
    public KvStoreStats kvStoreStats() {
        return remote == null ? null : remote.storeStats();
    }

    @Override
    public void close() {
        stopped = true;
        cancelAll();
        LockSupport.unpark(thread);
        try {
            thread.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (microBatchThread != null) {
            microBatchThread.shutdownNow();
        }
        if (!thread.isAlive()) {
            backend.close();  // a step still running after the wait keeps the backend's memory (leak, not crash)
        }
    }

    private void loop() {
        while (!stopped || !active.isEmpty() || !inbox.isEmpty()) {
            try {
                iterate();
            } catch (RuntimeException | Error e) {
                // Never let the step thread die: every request would hang. End what is active and go on.
                LOG.error("Engine loop failed; ending {} active requests with an error", active.size(), e);
                for (Active a : new ArrayList<>(active.values())) {
                    end(a, FinishReason.ERROR, null, null, "internal error: " + e);
                }
            }
        }
        publishStatus();
    }

    private void iterate() {
        admit();
        processCancels();
        List<ScheduledChunk> chunks = active.isEmpty() ? List.of() : scheduler.schedule();
        if (chunks.isEmpty()) {
            publishStatus();
            if (!stopped) {
                LockSupport.parkNanos(this, IDLE_PARK_NANOS);
            }
            return;
        }
        try {
            step(chunks);
        } catch (ExpertsUnavailableException e) {
            // No live worker holds some experts: the step's requests fail as UNAVAILABLE, naming them.
            LOG.error("Step failed: {}; ending its {} requests", e.getMessage(), chunks.size());
            for (ScheduledChunk ch : chunks) {
                Active a = active.get(ch.seq());
                if (a != null) {
                    endUnavailable(a, e.getMessage());
                }
            }
        } catch (RuntimeException | Error e) {
            LOG.error("Step failed; ending its {} requests with an error", chunks.size(), e);
            for (ScheduledChunk ch : chunks) {
                Active a = active.get(ch.seq());
                if (a != null) {
                    end(a, FinishReason.ERROR, null, null, "internal error: " + e);
                }
            }
        }
        publishStatus();
    }

    private void admit() {
        Active a;
        while ((a = inbox.poll()) != null) {
            try {
                a.stepper = new TokenStepper(a.request.prompt(), a.request.params(), tokenizer, eosIds, a.maxTotal,
                        a.request.logprobs(), samplerScratch);
            } catch (RuntimeException e) {
                refuseAtAdmission(a, e);
                continue;
            }
            SequenceState seq = new SequenceState(a.request.requestId(), a.request.prompt(), a.maxTotal, arrivals++);
            seq.setRemoteHits(a.remoteHits);
            a.remoteHits = null;
            a.seq = seq;
            active.put(seq, a);
            scheduler.add(seq);
            if (a.cancelled) {
                cancels.add(a);
            }
        }
    }

    /** A request whose own data failed before it held anything: it ends alone, with an error. */
    private void refuseAtAdmission(Active a, RuntimeException e) {
        LOG.warn("Request {} failed at admission; ending it alone", a.request.requestId(), e);
        queued.decrementAndGet();
        requestEnded();
        finishedCounts.merge(FinishReason.ERROR.wireName(), 1L, Long::sum);
        long total = System.nanoTime() - a.arrival;
        try {
            a.listener.onFinished(new Completion(FinishReason.ERROR, null, null, a.request.prompt().length, 0, 0, 0,
                    0, total, "the request could not start: " + describe(e), false));
        } catch (RuntimeException listenerFailure) {
            LOG.warn("Listener of request {} failed on finish", a.request.requestId(), listenerFailure);
        }
    }

    private void processCancels() {
        if (cancelEverything) {
            cancelEverything = false;
            for (Active a : new ArrayList<>(active.values())) {
                end(a, FinishReason.CANCELLED, null, null, null);
            }
        }
        Active a;
        while ((a = cancels.poll()) != null) {
            if (a.seq != null && active.containsKey(a.seq)) {
                end(a, FinishReason.CANCELLED, null, null, null);
            }
        }
    }

    private void step(List<ScheduledChunk> chunks) {
        for (ScheduledChunk ch : chunks) {
            Active a = active.get(ch.seq());
            if (a.firstScheduled == 0) {
                a.firstScheduled = System.nanoTime();
                a.cachedTokens = ch.seq().numCachedTokens();
                queued.decrementAndGet();
                try {
                    a.listener.onScheduled();
                } catch (RuntimeException e) {
                    // Its chunk is already in the step's batch: it is computed with the others, then ended.
                    LOG.warn("Listener of request {} failed when scheduled; ending it alone", a.request.requestId(),
                            e);
                    a.failure = "the request's stream failed: " + describe(e);
                }
            }
        }
        int tokens = 0;
        for (ScheduledChunk ch : chunks) {
            tokens += ch.numTokens();
        }
        boolean choice = microBatching != null && chunks.size() >= 2;
        int split = choice && microBatching.chooser().split(tokens) ? splitPoint(chunks) : chunks.size();
        long start = System.nanoTime();
        Prepared first = prepare(chunks.subList(0, split));
        int vocab = model.config().vocabSize();
        logits = grown(logits, first.rowOwner.length * vocab);
        if (split == chunks.size()) {
            try (StepObserver.StepScope ignored = observe(chunks, first)) {
                firstRunner.forward(first.batch, logits);
            }
            if (choice) {
                microBatching.chooser().record(tokens, false, System.nanoTime() - start);
            }
            scheduler.onStepDone(chunks);
            sample(first.rowOwner, logits);
            endFailed(chunks);
        } else {
            // Two micro-batches: while one waits on its experts (the dispatch releases the compute lock), the
            // other computes; each runs the same operations it would alone, so outputs do not change.
            Prepared second = prepare(chunks.subList(split, chunks.size()));
            List<ScheduledChunk> firstChunks = chunks.subList(0, split);
            // Listeners are read here, on the engine thread that owns the active map; the scope opens on the
            // thread that runs the micro-batch (trace context is per thread).
            List<SequenceListener> secondListeners = listenersOf(chunks.subList(split, chunks.size()));
            logits2 = grown(logits2, second.rowOwner.length * vocab);
            ReentrantLock lock = microBatching.lock();
            float[] secondLogits = logits2;
            Future<?> other = microBatchThread.submit(() -> {
                lock.lock();
                try (StepObserver.StepScope ignored = observeListeners(secondListeners, second)) {
                    secondRunner.forward(second.batch, secondLogits);
                } finally {
                    lock.unlock();
                }
            });
            RuntimeException failed = null;
            lock.lock();
            try (StepObserver.StepScope ignored = observe(firstChunks, first)) {
                firstRunner.forward(first.batch, logits);
            } catch (RuntimeException e) {
                failed = e;
            } finally {
                lock.unlock();
            }
            try {
                other.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for the second micro-batch", e);
            } catch (ExecutionException e) {
                if (failed == null) {
                    failed = e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
                }
            }
            if (failed != null) {
                throw failed;
            }
            microBatching.chooser().record(tokens, true, System.nanoTime() - start);
            scheduler.onStepDone(chunks);
            sample(first.rowOwner, logits);
            sample(second.rowOwner, logits2);
            endFailed(chunks);
        }
        steps++;
    }

    private StepObserver.StepScope observe(List<ScheduledChunk> chunks, Prepared p) {
        return stepObserver == StepObserver.NONE ? StepObserver.StepScope.NONE
                : observeListeners(listenersOf(chunks), p);
    }

    private StepObserver.StepScope observeListeners(List<SequenceListener> listeners, Prepared p) {
        return stepObserver == StepObserver.NONE ? StepObserver.StepScope.NONE
                : stepObserver.beforeForward(listeners, p.batch.tokens().length);
    }

    /** Engine thread only (it owns the active map). */
    private List<SequenceListener> listenersOf(List<ScheduledChunk> chunks) {
        if (stepObserver == StepObserver.NONE) {
            return List.of();
        }
        List<SequenceListener> l = new ArrayList<>(chunks.size());
        for (ScheduledChunk ch : chunks) {
            l.add(active.get(ch.seq()).listener);
        }
        return l;
    }

    /** Where to cut the step in two micro-batches of about equal tokens (whole chunks); the size when it can't. */
    private static int splitPoint(List<ScheduledChunk> chunks) {
        if (chunks.size() < 2) {
            return chunks.size();
        }
        int total = 0;
        for (ScheduledChunk ch : chunks) {
            total += ch.numTokens();
        }
        int acc = 0;
        for (int i = 0; i < chunks.size() - 1; i++) {
            acc += chunks.get(i).numTokens();
            if (2 * acc >= total) {
                return i + 1;
            }
        }
        return chunks.size() - 1;
    }

    private static float[] grown(float[] a, int size) {
        return a.length < size ? new float[size] : a;
    }

    /** One forward batch of chunks, and which chunk owns each logits row. */
    private record Prepared(ForwardBatch batch, ScheduledChunk[] rowOwner) {
    }

    private static Prepared prepare(List<ScheduledChunk> chunks) {
        int n = 0;
        int rows = 0;
        for (ScheduledChunk ch : chunks) {
            n += ch.numTokens();
            rows += ch.needsLogits() ? 1 : 0;
        }
        int[] tokens = new int[n];
        int[] positions = new int[n];
        KvCache[] caches = new KvCache[n];
        int[] logitRows = new int[rows];
        ScheduledChunk[] rowOwner = new ScheduledChunk[rows];
        int k = 0;
        int r = 0;
        for (ScheduledChunk ch : chunks) {
            SequenceState seq = ch.seq();
            KvCache cache = seq.kvCache();
            for (int i = ch.start(); i < ch.start() + ch.numTokens(); i++) {
                tokens[k] = seq.tokenAt(i);
                positions[k] = i;
                caches[k] = cache;
                k++;
            }
            if (ch.needsLogits()) {
                logitRows[r] = k - 1;
                rowOwner[r++] = ch;
            }
        }
        return new Prepared(new ForwardBatch(tokens, positions, caches, logitRows), rowOwner);
    }

    /**
     * Samples each row's sequence. Everything here runs on one request's own data (its sampling parameters,
     * history, stop rules, detokeniser, listener), so a failure ends that request alone and the loop goes on.
     */
    private void sample(ScheduledChunk[] rowOwner, float[] rowLogits) {
        int vocab = model.config().vocabSize();
        long now = System.nanoTime();
        for (int j = 0; j < rowOwner.length; j++) {
            SequenceState seq = rowOwner[j].seq();
            Active a = active.get(seq);
            if (a == null || a.failure != null) {
                continue;
            }
            TokenEvent event;
            try {
                event = a.stepper.next(rowLogits, j * vocab, vocab, seq.numTokens());
            } catch (RuntimeException e) {
                endAlone(a, "sampling failed: ", e);
                continue;
            }
            seq.appendToken(event.tokenId());
            generated++;
            if (a.firstToken == 0) {
                a.firstToken = now;
            }
            try {
                a.listener.onToken(event);
            } catch (RuntimeException e) {
                endAlone(a, "the request's stream failed: ", e);
                continue;
            }
            if (a.stepper.finished()) {
                StopDecision d = a.stepper.decision();
                end(a, d.finishReason(), d.stopString(), d.stopTokenId(), null);
            }
        }
    }

    /** Ends a request whose own code failed, with an error naming the cause; the others go on. */
    private void endAlone(Active a, String what, RuntimeException e) {
        LOG.warn("Request {}: {}ending it alone", a.request.requestId(), what, e);
        end(a, FinishReason.ERROR, null, null, what + describe(e));
    }

    /** Ends the step's requests that failed on their own (their chunk was computed with the others). */
    private void endFailed(List<ScheduledChunk> chunks) {
        for (ScheduledChunk ch : chunks) {
            Active a = active.get(ch.seq());
            if (a != null && a.failure != null) {
                end(a, FinishReason.ERROR, null, null, a.failure);
            }
        }
    }

    /** An exception as a client may read it: its message, or its type when it has none. */
    private static String describe(Throwable e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    /** Ends a request: frees its blocks at once and tells its listener. */
    private void end(Active a, FinishReason reason, String stopString, Integer stopToken, String error) {
        end(a, reason, stopString, stopToken, error, false);
    }

    /** Ends a request that failed because no live worker holds some of its experts (UNAVAILABLE, not INTERNAL). */
    private void endUnavailable(Active a, String error) {
        end(a, FinishReason.ERROR, null, null, error, true);
    }

    /** @param unavailable the cluster's failure (no live holder of some experts), not the request's */
    private void end(Active a, FinishReason reason, String stopString, Integer stopToken, String error,
                     boolean unavailable) {
        if (active.remove(a.seq) == null) {
            return;
        }
        boolean neverScheduled = a.firstScheduled == 0;
        scheduler.finish(a.seq);
        if (neverScheduled) {
            queued.decrementAndGet();
        }
        if (reason != FinishReason.STOP && reason != FinishReason.LENGTH) {
            a.stepper.abort(reason);
        }
        finishedCounts.merge(reason.wireName(), 1L, Long::sum);
        requestEnded();
        long now = System.nanoTime();
        Completion c = new Completion(reason, stopString, stopToken, a.request.prompt().length, a.stepper.generated(),
                a.cachedTokens, a.firstScheduled == 0 ? 0 : a.firstScheduled - a.arrival,
                a.firstToken == 0 ? 0 : a.firstToken - a.arrival, now - a.arrival, error, unavailable);
        try {
            a.listener.onFinished(c);
        } catch (RuntimeException e) {
            LOG.warn("Listener of request {} failed on finish", a.request.requestId(), e);
        }
    }

    /** Engine thread only: it owns the scheduler and the active map. */
    private void publishStatus() {
        int running = 0;
        int waiting = inbox.size();
        for (SequenceState s : active.keySet()) {
            if (s.status() == SequenceStatus.RUNNING) {
                running++;
            } else {
                waiting++;
            }
        }
        status = new EngineStatus(draining, running, waiting, config.maxWaiting(), kv.stats(), steps, generated,
                scheduler.preemptions(), Map.copyOf(finishedCounts), remote == null ? null
                : new EngineStatus.Remote(kv.adoptedBlocks(), remote.publishedBlocks(), remote.skippedRecent(),
                        remote.localSkips()));
    }

    /** One request in the engine; fields other than {@code cancelled} belong to the engine thread. */
    private final class Active implements Handle {
        final EngineRequest request;
        final SequenceListener listener;
        final int maxTotal;
        final long arrival;
        volatile boolean cancelled;
        SequenceState seq;
        TokenStepper stepper;
        long firstScheduled;
        long firstToken;
        int cachedTokens;
        /** Blocks found in the distributed tier at submit; handed to the sequence at admission. */
        RemoteKvTier.Hits remoteHits;
        /** Set when this request's own code failed mid-step; it is ended once the step is done. */
        String failure;

        Active(EngineRequest request, SequenceListener listener, int maxTotal, long arrival) {
            this.request = request;
            this.listener = listener;
            this.maxTotal = maxTotal;
            this.arrival = arrival;
        }

        @Override
        public void cancel() {
            if (!cancelled) {
                cancelled = true;
                cancels.add(this);
                LockSupport.unpark(thread);
            }
        }
    }
}
