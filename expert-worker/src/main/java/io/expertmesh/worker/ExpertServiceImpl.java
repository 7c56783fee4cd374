package io.expertmesh.worker;

import com.google.protobuf.Any;
import com.google.protobuf.UnsafeByteOperations;
import com.google.rpc.ErrorInfo;
import io.expertmesh.core.tensor.HiddenCodec;
import io.expertmesh.proto.expert.v1.ErrorReason;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.GetWorkerStatusRequest;
import io.expertmesh.proto.expert.v1.GetWorkerStatusResponse;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.LayerExperts;
import io.expertmesh.proto.expert.v1.LayerStatus;
import io.expertmesh.proto.expert.v1.LoadExpertsRequest;
import io.expertmesh.proto.expert.v1.LoadExpertsResponse;
import io.expertmesh.proto.expert.v1.OutputMode;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.expertmesh.proto.expert.v1.UnloadExpertsRequest;
import io.expertmesh.proto.expert.v1.UnloadExpertsResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Maps {@code expertmesh.expert.v1.ExpertService} calls onto an {@link ExpertExecutor}: validates every request
 * against the model (errors are {@code Status.X.withDescription(...)}, never a crash), decodes hidden states,
 * encodes results. UNAVAILABLE until {@link #serve} is called.
 */
public final class ExpertServiceImpl extends ExpertServiceGrpc.ExpertServiceImplBase {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertServiceImpl.class);

    private final RunExpertsObserver observer;
    private volatile ExpertExecutor executor;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicLong served = new AtomicLong();

    public ExpertServiceImpl() {
        this(RunExpertsObserver.NONE);
    }

    /** A service reporting every RunExperts call to {@code observer} (telemetry). */
    public ExpertServiceImpl(RunExpertsObserver observer) {
        this.observer = observer;
    }

    /** Starts answering with {@code loaded}. */
    void serve(ExpertExecutor loaded) {
        this.executor = loaded;
    }

    /** FAILED_PRECONDITION with an ErrorInfo the router reads by reason, not by message text. */
    static StatusRuntimeException notHeld(ExpertExecutor.ExpertNotHeldException e) {
        ErrorInfo info = ErrorInfo.newBuilder().setDomain(ERROR_DOMAIN)
                .setReason(ErrorReason.ERROR_REASON_EXPERTS_NOT_HELD.name())
                .putMetadata("layer", String.valueOf(e.layer()))
                .putMetadata("experts", Arrays.stream(e.experts()).mapToObj(String::valueOf)
                        .collect(Collectors.joining(",")))
                .build();
        return StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
                .setCode(Status.Code.FAILED_PRECONDITION.value()).setMessage(e.getMessage())
                .addDetails(Any.pack(info)).build());
    }

    /** ErrorInfo.domain of this service's errors. */
    public static final String ERROR_DOMAIN = "expertmesh.expert.v1";

    /**
     * Where RunExperts calls compute, one at a time in arrival order: the server runs handlers on the transport
     * thread (see {@link ExpertWorkerServer#transport}), which validates a call once all of it has arrived and
     * hands it here, one hand-off per call. The transport thread itself never computes: a health check or
     * another call on the same connection would wait behind the experts (a worker under load then fails its
     * health checks and is taken out).
     */
    private final ExecutorService computeThread = Executors.newSingleThreadExecutor(
            Thread.ofPlatform().name("expertmesh-worker-compute").daemon().factory());

    /** Where the other calls run: status, load and unload wait for a running call or read weights. */
    private final ExecutorService offTransport = Executors.newCachedThreadPool(
            Thread.ofPlatform().name("expertmesh-worker-call-", 0).daemon().factory());

    @Override
    public void runExperts(RunExpertsRequest req, StreamObserver<RunExpertsResponse> out) {
        inFlight.incrementAndGet();
        long start = System.nanoTime();
        ExpertExecutor ex;
        Validated v;
        try {
            ex = ready();
            v = validate(req, ex.shard());
        } catch (RuntimeException e) {
            inFlight.decrementAndGet();
            fail(req, out, start, e);
            return;
        }
        long queued = System.nanoTime();
        ReentrantLock lock = ex.lock();
        try {
            handOff(computeThread, () -> {
                if (io.grpc.Context.current().isCancelled()) {
                    // the caller gave up while the call queued (hedged to a replica, deadline): skip its compute
                    observe(req, v, start, Status.Code.CANCELLED);
                    inFlight.decrementAndGet();
                    return;
                }
                lock.lock();
                try {
                    compute(req, out, ex, v, start, queued);
                } finally {
                    lock.unlock();
                }
            });
        } catch (RejectedExecutionException e) {
            inFlight.decrementAndGet();
            fail(req, out, start, Status.UNAVAILABLE.withDescription("the worker is shutting down")
                    .asRuntimeException());
        }
    }

    /**
     * Computes a validated call and answers it; the caller holds the experts' lock, taken after {@code queued}
     * (the time in between, in the compute thread's queue and waiting for the lock, is the call's queueing).
     */
    private void compute(RunExpertsRequest req, StreamObserver<RunExpertsResponse> out, ExpertExecutor ex,
                         Validated v, long start, long queued) {
        RunExpertsResponse response;
        try {
            long computing = System.nanoTime();
            // Decoded and encoded under the experts' lock, into the executor's reused buffers.
            HiddenCodec codec = codec(req.getEncoding());
            ByteBuffer hidden = req.getHiddenStates().asReadOnlyByteBuffer();
            byte[] result = req.getOutputMode() == OutputMode.OUTPUT_MODE_PER_ASSIGNMENT
                    ? ex.runPerAssignment(req.getLayer(), hidden, codec, req.getNumTokens(), v.offsets, v.ids)
                    : ex.run(req.getLayer(), hidden, codec, req.getNumTokens(), v.offsets, v.ids, v.weights);
            long computed = System.nanoTime();
            response = RunExpertsResponse.newBuilder().setEncoding(req.getEncoding())
                    .setOutputMode(req.getOutputMode()).setOutputs(UnsafeByteOperations.unsafeWrap(result))
                    .setQueueMicros((computing - queued) / 1000).setComputeMicros((computed - computing) / 1000)
                    .build();
            observer.onTimes(req.getLayer(), computing - queued, computed - computing);
            observe(req, v, start, Status.Code.OK);
        } catch (RuntimeException e) {
            inFlight.decrementAndGet();
            fail(req, out, start, e);
            return;
        }
        // Counted before the answer goes out, so a status read by a caller that has its answer sees the call done.
        served.incrementAndGet();
        inFlight.decrementAndGet();
        try {
            out.onNext(response);
            out.onCompleted();
        } catch (RuntimeException e) {
            // the caller went away while the answer was sent (a cancelled call): nobody is left to tell
            LOG.debug("RunExperts answer for layer {} not delivered: {}", req.getLayer(), e.toString());
        }
    }

    /** Ends a RunExperts call with the status {@code e} stands for. */
    private void fail(RunExpertsRequest req, StreamObserver<RunExpertsResponse> out, long start, RuntimeException e) {
        try {
            if (e instanceof ExpertExecutor.ExpertNotHeldException nh) {
                observe(req, null, start, Status.Code.FAILED_PRECONDITION);
                out.onError(notHeld(nh));
            } else if (e instanceof StatusRuntimeException sre) {
                observe(req, null, start, sre.getStatus().getCode());
                out.onError(sre);
            } else {
                LOG.error("RunExperts failed on layer {}", req.getLayer(), e);
                observe(req, null, start, Status.Code.INTERNAL);
                out.onError(Status.INTERNAL.withDescription("RunExperts failed: " + e).asRuntimeException());
            }
        } catch (RuntimeException answering) {
            LOG.warn("RunExperts on layer {}: the error could not be sent", req.getLayer(), answering);
        }
    }

    /** Runs {@code call} on {@code threads} in this call's contexts (its trace span, its deadline). */
    private static void handOff(ExecutorService threads, Runnable call) {
        threads.execute(io.grpc.Context.current().wrap(io.opentelemetry.context.Context.current().wrap(call)));
    }

    /** Stops taking calls; a running one finishes. */
    void close() {
        computeThread.shutdown();
        offTransport.shutdown();
    }

    /** Before the response is sent: the call's span is still open and the observer's attributes land on it. */
    private void observe(RunExpertsRequest req, Validated v, long start, Status.Code code) {
        try {
            observer.onRunExperts(req.getLayer(), req.getNumTokens(), v == null ? null : v.ids,
                    v == null ? 0 : v.ids.length, System.nanoTime() - start, code);
        } catch (RuntimeException e) {
            LOG.warn("RunExperts observer failed", e);
        }
    }

    @Override
    public void loadExperts(LoadExpertsRequest req, StreamObserver<LoadExpertsResponse> out) {
        offTransport(out, () -> loadExpertsHere(req, out));
    }

    private void loadExpertsHere(LoadExpertsRequest req, StreamObserver<LoadExpertsResponse> out) {
        try {
            ExpertExecutor ex = ready();
            for (LayerExperts l : req.getLayersList()) {
                checkLayerExperts(l, ex.shard());
            }
            LoadExpertsResponse.Builder b = LoadExpertsResponse.newBuilder();
            for (LayerExperts l : req.getLayersList()) {
                int[] loaded = ex.load(l.getLayer(), ids(l));
                if (loaded.length > 0) {
                    b.addLoaded(layerExperts(l.getLayer(), loaded));
                }
                LOG.info("Loaded layer {} experts {}", l.getLayer(), Arrays.toString(loaded));
            }
            out.onNext(b.build());
            out.onCompleted();
        } catch (StatusRuntimeException e) {
            out.onError(e);
        } catch (RuntimeException e) {
            LOG.error("LoadExperts failed", e);
            out.onError(Status.FAILED_PRECONDITION.withDescription("cannot load experts: " + e.getMessage())
                    .asRuntimeException());
        }
    }

    @Override
    public void unloadExperts(UnloadExpertsRequest req, StreamObserver<UnloadExpertsResponse> out) {
        offTransport(out, () -> unloadExpertsHere(req, out));
    }

    private void unloadExpertsHere(UnloadExpertsRequest req, StreamObserver<UnloadExpertsResponse> out) {
        try {
            ExpertExecutor ex = ready();
            for (LayerExperts l : req.getLayersList()) {
                checkLayerExperts(l, ex.shard());
            }
            UnloadExpertsResponse.Builder b = UnloadExpertsResponse.newBuilder();
            for (LayerExperts l : req.getLayersList()) {
                int[] dropped = ex.unload(l.getLayer(), ids(l));
                if (dropped.length > 0) {
                    b.addUnloaded(layerExperts(l.getLayer(), dropped));
                }
                LOG.info("Unloaded layer {} experts {}", l.getLayer(), Arrays.toString(dropped));
            }
            out.onNext(b.build());
            out.onCompleted();
        } catch (StatusRuntimeException e) {
            out.onError(e);
        } catch (RuntimeException e) {
            LOG.error("UnloadExperts failed", e);
            out.onError(Status.INTERNAL.withDescription("UnloadExperts failed: " + e).asRuntimeException());
        }
    }

    @Override
    public void getWorkerStatus(GetWorkerStatusRequest req, StreamObserver<GetWorkerStatusResponse> out) {
        offTransport(out, () -> getWorkerStatusHere(req, out));
    }

    private void getWorkerStatusHere(GetWorkerStatusRequest req, StreamObserver<GetWorkerStatusResponse> out) {
        try {
            ExpertExecutor ex = ready();
            ExpertShard shard = ex.shard();
            GetWorkerStatusResponse.Builder b = GetWorkerStatusResponse.newBuilder()
                    .setModel(shard.dir().toString())
                    .setArchitecture(shard.config().architecture().hfName())
                    .setHiddenSize(shard.config().hiddenSize())
                    .setNumRoutedExperts(shard.config().numRoutedExperts())
                    .setExpertKernels(ex.computeKind())
                    .setRequestsInFlight(inFlight.get())
                    .setRequestsServed(served.get());
            for (int layer : shard.moeLayers()) {
                b.addMoeLayers(layer);
                ExpertExecutor.LayerUsage u = ex.usage(layer);
                if (u.expertIds().length > 0) {
                    LayerStatus.Builder l = LayerStatus.newBuilder().setLayer(layer);
                    for (int i = 0; i < u.expertIds().length; i++) {
                        l.addExpertIds(u.expertIds()[i]).addTokensServed(u.tokensServed()[i]);
                    }
                    b.addLayers(l);
                }
            }
            out.onNext(b.build());
            out.onCompleted();
        } catch (StatusRuntimeException e) {
            out.onError(e);
        } catch (RuntimeException e) {
            LOG.error("GetWorkerStatus failed", e);
            out.onError(Status.INTERNAL.withDescription("GetWorkerStatus failed: " + e).asRuntimeException());
        }
    }

    /** Runs {@code call} on {@link #offTransport}: it may wait for a running RunExperts call or load weights. */
    private void offTransport(StreamObserver<?> out, Runnable call) {
        try {
            handOff(offTransport, call);
        } catch (RejectedExecutionException e) {
            out.onError(Status.UNAVAILABLE.withDescription("the worker is shutting down").asRuntimeException());
        }
    }

    private ExpertExecutor ready() {
        ExpertExecutor ex = executor;
        if (ex == null) {
            throw Status.UNAVAILABLE.withDescription("the worker is still loading its experts").asRuntimeException();
        }
        return ex;
    }

    /** A request's arrays, checked (its hidden states are decoded when it computes). */
    private record Validated(int[] offsets, int[] ids, float[] weights) {
    }

    static Validated validate(RunExpertsRequest req, ExpertShard shard) {
        int hidden = shard.config().hiddenSize();
        int experts = shard.config().numRoutedExperts();
        int tokens = req.getNumTokens();
        if (tokens < 1) {
            throw invalid("num_tokens must be >= 1, got " + tokens);
        }
        checkMoeLayer(req.getLayer(), shard);
        if (req.getHiddenSize() != hidden) {
            throw Status.FAILED_PRECONDITION.withDescription("hidden_size " + req.getHiddenSize()
                    + " does not match the model's hidden size " + hidden).asRuntimeException();
        }
        int width = switch (req.getEncoding()) {
            case HIDDEN_ENCODING_BF16 -> 2;
            case HIDDEN_ENCODING_F32 -> 4;
            default -> throw invalid("unknown hidden encoding " + req.getEncodingValue());
        };
        if (req.getOutputMode() == OutputMode.UNRECOGNIZED) {
            throw invalid("unknown output mode " + req.getOutputModeValue());
        }
        long want = (long) tokens * hidden * width;
        if (req.getHiddenStates().size() != want) {
            throw invalid("hidden_states has " + req.getHiddenStates().size() + " bytes; expected num_tokens "
                    + tokens + " × hidden_size " + hidden + " × " + width + " bytes (" + req.getEncoding() + ") = "
                    + want);
        }
        if (req.getAssignmentsPerTokenCount() != tokens) {
            throw invalid("assignments_per_token has " + req.getAssignmentsPerTokenCount()
                    + " entries; expected one per token (" + tokens + ")");
        }
        int[] offsets = new int[tokens + 1];
        for (int t = 0; t < tokens; t++) {
            int a = req.getAssignmentsPerToken(t);
            if (a < 1 || a > experts) {
                throw invalid("assignments_per_token[" + t + "] is " + a + "; must be 1.." + experts);
            }
            offsets[t + 1] = offsets[t] + a;
        }
        int n = offsets[tokens];
        if (req.getExpertIdsCount() != n || req.getWeightsCount() != n) {
            throw invalid("assignments_per_token sums to " + n + " but there are " + req.getExpertIdsCount()
                    + " expert_ids and " + req.getWeightsCount() + " weights");
        }
        int[] ids = new int[n];
        float[] weights = new float[n];
        for (int t = 0; t < tokens; t++) {
            for (int i = offsets[t]; i < offsets[t + 1]; i++) {
                int e = req.getExpertIds(i);
                if (e < 0 || e >= experts) {
                    throw Status.FAILED_PRECONDITION.withDescription("token " + t + ": unknown expert id " + e
                            + " (the model has experts 0-" + (experts - 1) + ")").asRuntimeException();
                }
                for (int j = offsets[t]; j < i; j++) {
                    if (ids[j] == e) {
                        throw invalid("token " + t + " names expert " + e + " twice");
                    }
                }
                float w = req.getWeights(i);
                if (!Float.isFinite(w)) {
                    throw invalid("token " + t + ": weight " + w + " of expert " + e + " is not finite");
                }
                ids[i] = e;
                weights[i] = w;
            }
        }
        return new Validated(offsets, ids, weights);
    }

    private static void checkLayerExperts(LayerExperts l, ExpertShard shard) {
        checkMoeLayer(l.getLayer(), shard);
        int experts = shard.config().numRoutedExperts();
        for (int e : l.getExpertIdsList()) {
            if (e < 0 || e >= experts) {
                throw Status.FAILED_PRECONDITION.withDescription("layer " + l.getLayer() + ": unknown expert id " + e
                        + " (the model has experts 0-" + (experts - 1) + ")").asRuntimeException();
            }
        }
    }

    private static void checkMoeLayer(int layer, ExpertShard shard) {
        if (!shard.isMoeLayer(layer)) {
            throw Status.FAILED_PRECONDITION.withDescription("layer " + layer + " is not an MoE layer of this model"
                    + " (MoE layers: " + Arrays.toString(shard.moeLayers()) + ")").asRuntimeException();
        }
    }

    private static StatusRuntimeException invalid(String message) {
        return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
    }

    private static int[] ids(LayerExperts l) {
        return l.getExpertIdsList().stream().mapToInt(Integer::intValue).toArray();
    }

    private static LayerExperts layerExperts(int layer, int[] ids) {
        LayerExperts.Builder b = LayerExperts.newBuilder().setLayer(layer);
        for (int e : ids) {
            b.addExpertIds(e);
        }
        return b.build();
    }

    /** The codec of a wire encoding (the service checked it is F32 or BF16). */
    static HiddenCodec codec(HiddenEncoding encoding) {
        return encoding == HiddenEncoding.HIDDEN_ENCODING_F32 ? HiddenCodec.F32 : HiddenCodec.BF16;
    }
}
