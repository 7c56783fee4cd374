package io.expertmesh.router.service;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.tokenizer.ChatMessage;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.proto.inference.v1.DetokenizeRequest;
import io.expertmesh.proto.inference.v1.DetokenizeResponse;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GetModelInfoRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.ModelInfo;
import io.expertmesh.proto.inference.v1.ServerStatus;
import io.expertmesh.proto.inference.v1.TokenizeRequest;
import io.expertmesh.proto.inference.v1.TokenizeResponse;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineRejection;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.telemetry.RouterTelemetry;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The public {@code expertmesh.inference.v1.InferenceService}: validates requests, hands them to the
 * {@link Engine}, and maps every outcome to a gRPC status. UNAVAILABLE until a model is loaded and while
 * draining.
 */
public final class InferenceService extends InferenceServiceGrpc.InferenceServiceImplBase {
    private static final Logger LOG = LoggerFactory.getLogger(InferenceService.class);

    private final int maxBufferedTokens;
    private final RouterTelemetry telemetry;
    private volatile Served served;
    private volatile boolean draining;
    /** Whether every routed expert has a live holder (always, when the experts run in process). */
    private volatile java.util.function.BooleanSupplier expertsServable = () -> true;

    /** The loaded model and its engine, published together. */
    private record Served(LoadedModel model, Engine engine, GenerateRequestMapper mapper) {
    }

    /** @param maxBufferedTokens tokens a slow client may leave unread before its stream is cut */
    public InferenceService(int maxBufferedTokens) {
        this(maxBufferedTokens, RouterTelemetry.noop());
    }

    /** A service whose requests {@code telemetry} traces and measures. */
    public InferenceService(int maxBufferedTokens, RouterTelemetry telemetry) {
        this.maxBufferedTokens = maxBufferedTokens;
        this.telemetry = telemetry;
    }

    /** Makes the service answer with this model. */
    public void serve(LoadedModel model, Engine engine) {
        served = new Served(model, engine, new GenerateRequestMapper(model.config(),
                model.tokenizer().orElse(null)));
    }

    /** Makes GetStatus report {@code serving=false} while {@code servable} says some expert has no holder. */
    public void expertsServable(java.util.function.BooleanSupplier servable) {
        this.expertsServable = servable;
    }

    /** Stops admitting new generations (UNAVAILABLE); running ones continue. */
    public void startDrain() {
        draining = true;
        Served s = served;
        if (s != null) {
            s.engine().startDrain();
        }
    }

    private Served served() {
        Served s = served;
        if (s == null) {
            throw Status.UNAVAILABLE.withDescription("the model is still loading; retry shortly").asRuntimeException();
        }
        return s;
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responseObserver) {
        ServerCallStreamObserver<GenerateResponse> observer =
                (ServerCallStreamObserver<GenerateResponse>) responseObserver;
        try {
            if (draining) {
                throw Status.UNAVAILABLE.withDescription("the server is draining; retry elsewhere")
                        .asRuntimeException();
            }
            Served s = served();
            EngineRequest req = s.mapper().map(request);
            GenerateStream stream = new GenerateStream(observer, req.requestId(), req.logprobs(), maxBufferedTokens);
            stream.attach(s.engine().submit(req, telemetry.observe(req, stream)));
        } catch (StatusRuntimeException e) {
            observer.onError(e);
        } catch (EngineRejection e) {
            Status status = switch (e.reason()) {
                case QUEUE_FULL -> Status.RESOURCE_EXHAUSTED;
                case DRAINING -> Status.UNAVAILABLE;
                case TOO_LARGE -> Status.INVALID_ARGUMENT;
            };
            observer.onError(status.withDescription(e.getMessage()).asRuntimeException());
        } catch (RuntimeException e) {
            LOG.error("Generate {} failed", request.getRequestId(), e);
            observer.onError(Status.INTERNAL.withDescription("internal error: " + e.getMessage()).asRuntimeException());
        }
    }

    @Override
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> observer) {
        unary(observer, () -> {
            ModelTokenizer tok = tokenizer();
            PromptTextLimit limit = served().mapper().textLimit();
            TokenizeResponse.Builder r = TokenizeResponse.newBuilder();
            switch (request.getInputCase()) {
                case TEXT -> {
                    InvalidRequest bad = new InvalidRequest();
                    if (!limit.check("text", request.getTextBytes().size(), bad)) {
                        bad.throwIfAny();
                    }
                    for (int id : tok.encode(request.getText(), request.getAddSpecialTokens())) {
                        r.addIds(id);
                    }
                }
                case CHAT -> {
                    InvalidRequest bad = new InvalidRequest();
                    if (!limit.check("chat.messages", PromptTextLimit.bytesOf(request.getChat()), bad)) {
                        bad.throwIfAny();
                    }
                    List<ChatMessage> messages = new ArrayList<>();
                    for (int i = 0; i < request.getChat().getMessagesCount(); i++) {
                        var m = request.getChat().getMessages(i);
                        try {
                            messages.add(new ChatMessage(m.getRole(), m.getContent()));
                        } catch (IllegalArgumentException e) {
                            throw InvalidRequest.of("chat.messages[" + i + "].role", e.getMessage());
                        }
                    }
                    if (messages.isEmpty()) {
                        throw InvalidRequest.of("chat.messages", "no messages");
                    }
                    try {
                        String text = tok.applyChatTemplate(messages, !request.getChat().getOmitGenerationPrompt());
                        r.setRendered(text);
                        for (int id : tok.encode(text, false)) {
                            r.addIds(id);
                        }
                    } catch (IllegalArgumentException | IllegalStateException e) {
                        throw InvalidRequest.of("chat", e.getMessage());
                    }
                }
                default -> throw InvalidRequest.of("input", "one of text or chat is required");
            }
            return r.build();
        });
    }

    @Override
    public void detokenize(DetokenizeRequest request, StreamObserver<DetokenizeResponse> observer) {
        unary(observer, () -> {
            ModelTokenizer tok = tokenizer();
            int vocab = served().model().config().vocabSize();
            int[] ids = new int[request.getIdsCount()];
            InvalidRequest bad = new InvalidRequest();
            for (int i = 0; i < ids.length; i++) {
                ids[i] = request.getIds(i);
                if (ids[i] < 0 || ids[i] >= vocab) {
                    bad.add("ids[" + i + "]", "token id " + ids[i] + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
            bad.throwIfAny();
            return DetokenizeResponse.newBuilder().setText(tok.decode(ids, request.getSkipSpecialTokens())).build();
        });
    }

    @Override
    public void getModelInfo(GetModelInfoRequest request, StreamObserver<ModelInfo> observer) {
        unary(observer, () -> {
            Served s = served();
            var c = s.model().config();
            ModelTokenizer tok = s.model().tokenizer().orElse(null);
            return ModelInfo.newBuilder().setModelId(s.model().dir().getFileName().toString())
                    .setShape(ProtoMapping.shape(c)).setHasTokenizer(tok != null)
                    .setHasChatTemplate(tok != null && tok.hasChatTemplate()).setBosTokenId(c.bosTokenId())
                    .addAllEosTokenIds(c.eosTokenIds()).setKvBlockSize(s.engine().config().blockSize()).build();
        });
    }

    @Override
    public void getStatus(GetStatusRequest request, StreamObserver<ServerStatus> observer) {
        unary(observer, () -> {
            Served s = served();
            // serving and draining from one read: never "not serving" without "draining" during a drain; not
            // serving either while some routed expert has no live holder
            return ProtoMapping.status(draining, expertsServable.getAsBoolean(), s.engine().status(),
                    s.engine().kvStoreStats());
        });
    }

    private ModelTokenizer tokenizer() {
        return served().model().tokenizer().orElseThrow(() -> Status.FAILED_PRECONDITION
                .withDescription("the model has no tokenizer (no tokenizer.json in its directory)")
                .asRuntimeException());
    }

    private static <T> void unary(StreamObserver<T> observer, java.util.function.Supplier<T> call) {
        T result;
        try {
            result = call.get();
        } catch (StatusRuntimeException e) {
            observer.onError(e);
            return;
        } catch (RuntimeException e) {
            LOG.error("Call failed", e);
            observer.onError(Status.INTERNAL.withDescription("internal error: " + e.getMessage()).asRuntimeException());
            return;
        }
        observer.onNext(result);
        observer.onCompleted();
    }
}
