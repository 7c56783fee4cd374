package io.expertmesh.client.fake;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import io.expertmesh.proto.inference.v1.DetokenizeRequest;
import io.expertmesh.proto.inference.v1.DetokenizeResponse;
import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.GetModelInfoRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.KvCacheStatus;
import io.expertmesh.proto.inference.v1.ModelInfo;
import io.expertmesh.proto.inference.v1.ServerStatus;
import io.expertmesh.proto.inference.v1.TokenLogprob;
import io.expertmesh.proto.inference.v1.TokenizeRequest;
import io.expertmesh.proto.inference.v1.TokenizeResponse;
import io.expertmesh.proto.inference.v1.Usage;
import io.expertmesh.proto.model.v1.ModelShape;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A scripted stand-in for the router's InferenceService, for client tests (Java and Python).
 *
 * <p>Generate validates like the router (INVALID_ARGUMENT with a {@code google.rpc.BadRequest} detail), then streams
 * the first {@code max_tokens} ids of {@link #SCRIPT} (all of them and {@code stop} when max_tokens is larger),
 * two tokens per message, the last message also carrying {@code finished}. Token {@code i} has text
 * {@code " t<id>"} and, when asked for, logprob {@code -0.125 × (i + 1)} and alternatives {@code id, id+1, …}.
 * It runs on its own virtual thread, stops when the client cancels and counts that in {@link #cancelled()}.
 */
public class FakeInferenceService extends InferenceServiceGrpc.InferenceServiceImplBase {
    /** The completion every Generate produces (cut to max_tokens). */
    public static final int[] SCRIPT = {765, 164, 924, 11, 42, 7, 512, 3};
    /** The model id GetModelInfo reports. */
    public static final String MODEL_ID = "fake-moe";
    public static final int VOCAB_SIZE = 1024;

    private final AtomicReference<Status> failNextGenerate = new AtomicReference<>();
    private volatile Status failGenerates;
    private volatile Status failAfterFirstMessage;
    private final AtomicInteger generateCalls = new AtomicInteger();
    private volatile Duration tokenDelay = Duration.ZERO;
    private volatile Duration unaryDelay = Duration.ZERO;
    private volatile boolean omitFinished;
    private final AtomicReference<GenerateRequest> lastRequest = new AtomicReference<>();
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicLong generated = new AtomicLong();
    private volatile CountDownLatch cancelled = new CountDownLatch(1);

    /** The next Generate fails with this status (once). */
    public FakeInferenceService failNextGenerate(Status status) {
        failNextGenerate.set(status);
        return this;
    }

    /** Every Generate fails with this status before any message, until set to {@code null} (a draining router). */
    public FakeInferenceService failGenerates(Status status) {
        this.failGenerates = status;
        return this;
    }

    /**
     * Every Generate sends its first message (tokens) and then fails with this status, until set to {@code null}
     * (a router that dies mid-stream).
     */
    public FakeInferenceService failAfterFirstMessage(Status status) {
        this.failAfterFirstMessage = status;
        return this;
    }

    /** How many Generate calls reached this service (each retry attempt counts). */
    public int generateCalls() {
        return generateCalls.get();
    }

    /** Waits this long before each Generate message (to test deadlines and cancellation). */
    public FakeInferenceService tokenDelay(Duration delay) {
        this.tokenDelay = delay;
        return this;
    }

    /** Waits this long before answering each unary call. */
    public FakeInferenceService unaryDelay(Duration delay) {
        this.unaryDelay = delay;
        return this;
    }

    /** Ends Generate streams without the finished message (a broken server). */
    public FakeInferenceService omitFinished(boolean omit) {
        this.omitFinished = omit;
        return this;
    }

    /** The last Generate request received. */
    public GenerateRequest lastRequest() {
        return lastRequest.get();
    }

    /** Waits until a Generate has been cancelled by its client (or its deadline); false on timeout. */
    public boolean awaitCancelled(Duration timeout) throws InterruptedException {
        return cancelled.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Whether a Generate has been cancelled. */
    public boolean cancelled() {
        return cancelled.getCount() == 0;
    }

    /** The text of one generated token. */
    public static String tokenText(int id) {
        return " t" + id;
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> observer) {
        lastRequest.set(request);
        generateCalls.incrementAndGet();
        Status failure = failNextGenerate.getAndSet(null);
        if (failure == null) {
            failure = failGenerates;
        }
        if (failure != null) {
            observer.onError(failure.asRuntimeException());
            return;
        }
        List<BadRequest.FieldViolation> violations = validate(request);
        if (!violations.isEmpty()) {
            observer.onError(StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
                    .setCode(Code.INVALID_ARGUMENT_VALUE)
                    .setMessage("invalid GenerateRequest: " + violations.size() + " field(s)")
                    .addDetails(Any.pack(BadRequest.newBuilder().addAllFieldViolations(violations).build()))
                    .build()));
            return;
        }
        ServerCallStreamObserver<GenerateResponse> call = (ServerCallStreamObserver<GenerateResponse>) observer;
        CountDownLatch cancelledLatch = cancelled;
        call.setOnCancelHandler(cancelledLatch::countDown);
        running.incrementAndGet();
        Thread.ofVirtual().name("fake-generate").start(() -> {
            try {
                stream(request, call);
            } finally {
                running.decrementAndGet();
            }
        });
    }

    private void stream(GenerateRequest request, ServerCallStreamObserver<GenerateResponse> call) {
        long start = System.nanoTime();
        int max = request.hasMaxTokens() ? request.getMaxTokens() : 256;
        int n = Math.min(max, SCRIPT.length);
        String id = request.getRequestId().isEmpty() ? "fake-1" : request.getRequestId();
        boolean logprobs = request.getLogprobs() || request.getTopLogprobs() > 0;
        for (int i = 0; i < n; i += 2) {
            if (!sleep(tokenDelay)) {
                return;
            }
            if (call.isCancelled()) {
                cancelled.countDown(); // also when the client cancelled before the cancel handler was set
                return;
            }
            GenerateResponse.Builder msg = GenerateResponse.newBuilder().setRequestId(id);
            for (int j = i; j < Math.min(i + 2, n); j++) {
                msg.addTokens(token(j, SCRIPT[j], logprobs, request.getTopLogprobs()));
            }
            boolean last = i + 2 >= n;
            if (last && !omitFinished) {
                double totalMs = (System.nanoTime() - start) / 1e6;
                msg.setFinished(Finished.newBuilder()
                        .setReason(max <= SCRIPT.length ? FinishReason.FINISH_REASON_LENGTH
                                : FinishReason.FINISH_REASON_STOP)
                        .setUsage(Usage.newBuilder().setPromptTokens(promptTokens(request)).setCompletionTokens(n)
                                .setTimeToFirstTokenMs(2.5).setTotalMs(2.5 + 4 * (n - 1)).setQueueMs(0.5)));
            }
            generated.addAndGet(msg.getTokensCount());
            call.onNext(msg.build());
            Status midStream = failAfterFirstMessage;
            if (midStream != null) {
                call.onError(midStream.asRuntimeException());
                return;
            }
        }
        call.onCompleted();
    }

    private static GeneratedToken token(int index, int id, boolean logprobs, int top) {
        GeneratedToken.Builder t = GeneratedToken.newBuilder().setIndex(index).setTokenId(id).setText(tokenText(id));
        if (logprobs) {
            float lp = -0.125f * (index + 1);
            t.setLogprob(lp);
            for (int k = 0; k < top; k++) {
                t.addTopLogprobs(TokenLogprob.newBuilder().setTokenId(id + k).setLogprob(lp - k));
            }
        }
        return t.build();
    }

    private static int promptTokens(GenerateRequest r) {
        return switch (r.getPromptCase()) {
            case TOKEN_IDS -> r.getTokenIds().getIdsCount();
            case TEXT -> r.getText().length() + 1;
            case CHAT -> r.getChat().getMessagesList().stream().mapToInt(m -> m.getContent().length() + 4).sum();
            case PROMPT_NOT_SET -> 0;
        };
    }

    private static List<BadRequest.FieldViolation> validate(GenerateRequest r) {
        List<BadRequest.FieldViolation> v = new ArrayList<>();
        switch (r.getPromptCase()) {
            case PROMPT_NOT_SET -> v.add(violation("prompt", "give one of text, token_ids, chat"));
            case TEXT -> {
                if (r.getText().isEmpty()) {
                    v.add(violation("text", "must not be empty"));
                }
            }
            case TOKEN_IDS -> {
                List<Integer> ids = r.getTokenIds().getIdsList();
                if (ids.isEmpty()) {
                    v.add(violation("token_ids.ids", "must not be empty"));
                }
                for (int i = 0; i < ids.size(); i++) {
                    if (ids.get(i) < 0 || ids.get(i) >= VOCAB_SIZE) {
                        v.add(violation("token_ids.ids[" + i + "]",
                                ids.get(i) + " is outside the vocabulary [0, " + VOCAB_SIZE + ")"));
                    }
                }
            }
            case CHAT -> {
                if (r.getChat().getMessagesCount() == 0) {
                    v.add(violation("chat.messages", "must not be empty"));
                }
            }
        }
        if (r.hasMaxTokens() && r.getMaxTokens() < 1) {
            v.add(violation("max_tokens", "must be >= 1, got " + r.getMaxTokens()));
        }
        if (r.getSampling().hasTemperature() && r.getSampling().getTemperature() < 0) {
            v.add(violation("sampling.temperature", "must be >= 0, got " + r.getSampling().getTemperature()));
        }
        if (r.getSampling().hasTopP() && (r.getSampling().getTopP() <= 0 || r.getSampling().getTopP() > 1)) {
            v.add(violation("sampling.top_p", "must be in (0, 1], got " + r.getSampling().getTopP()));
        }
        if (r.getTopLogprobs() < 0 || r.getTopLogprobs() > 20) {
            v.add(violation("top_logprobs", "must be in [0, 20], got " + r.getTopLogprobs()));
        }
        return v;
    }

    private static BadRequest.FieldViolation violation(String field, String description) {
        return BadRequest.FieldViolation.newBuilder().setField(field).setDescription(description).build();
    }

    @Override
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> observer) {
        if (!sleep(unaryDelay)) {
            return;
        }
        if (request.getInputCase() != TokenizeRequest.InputCase.TEXT) {
            observer.onError(Status.UNIMPLEMENTED.withDescription("the fake tokenizes text only").asRuntimeException());
            return;
        }
        TokenizeResponse.Builder b = TokenizeResponse.newBuilder();
        if (request.getAddSpecialTokens()) {
            b.addIds(0);
        }
        request.getText().codePoints().forEach(b::addIds);
        observer.onNext(b.build());
        observer.onCompleted();
    }

    @Override
    public void detokenize(DetokenizeRequest request, StreamObserver<DetokenizeResponse> observer) {
        if (!sleep(unaryDelay)) {
            return;
        }
        StringBuilder text = new StringBuilder();
        for (int id : request.getIdsList()) {
            if (id == 0) {
                if (!request.getSkipSpecialTokens()) {
                    text.append("<bos>");
                }
            } else {
                text.appendCodePoint(id);
            }
        }
        observer.onNext(DetokenizeResponse.newBuilder().setText(text.toString()).build());
        observer.onCompleted();
    }

    @Override
    public void getModelInfo(GetModelInfoRequest request, StreamObserver<ModelInfo> observer) {
        if (!sleep(unaryDelay)) {
            return;
        }
        observer.onNext(ModelInfo.newBuilder().setModelId(MODEL_ID)
                .setShape(ModelShape.newBuilder().setArchitecture("DeepseekV3ForCausalLM").setHiddenSize(64)
                        .setNumLayers(2).setNumRoutedExperts(8).setExpertsPerToken(2).setVocabSize(VOCAB_SIZE)
                        .setMaxContext(512))
                .setHasTokenizer(true).setHasChatTemplate(true).setBosTokenId(0).addEosTokenIds(1)
                .setKvBlockSize(16).build());
        observer.onCompleted();
    }

    @Override
    public void getStatus(GetStatusRequest request, StreamObserver<ServerStatus> observer) {
        if (!sleep(unaryDelay)) {
            return;
        }
        observer.onNext(ServerStatus.newBuilder().setServing(true).setRunning(running.get()).setMaxWaiting(64)
                .setKvCache(KvCacheStatus.newBuilder().setBlockSize(16).setTotalBlocks(128).setFreeBlocks(128))
                .setGeneratedTokens(generated.get()).build());
        observer.onCompleted();
    }

    private static boolean sleep(Duration d) {
        if (d.isZero()) {
            return true;
        }
        try {
            Thread.sleep(d);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
