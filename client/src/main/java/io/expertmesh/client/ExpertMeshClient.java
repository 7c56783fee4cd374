package io.expertmesh.client;

import io.expertmesh.proto.inference.v1.DetokenizeRequest;
import io.expertmesh.proto.inference.v1.DetokenizeResponse;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.GetModelInfoRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.ModelInfo;
import io.expertmesh.proto.inference.v1.ServerStatus;
import io.expertmesh.proto.inference.v1.TokenizeRequest;
import io.expertmesh.proto.inference.v1.TokenizeResponse;
import io.expertmesh.security.BearerTokenCredentials;
import io.expertmesh.security.TlsCredentials;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.Context;
import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client of a router's public {@code InferenceService}.
 *
 * <pre>{@code
 * try (ExpertMeshClient client = ExpertMeshClient.connect("localhost:50051")) {
 *     GenerateResult r = client.generate(Requests.text("The capital of France is").setMaxTokens(8).build());
 *     System.out.println(r.text());
 * }
 * }</pre>
 *
 * <p>Three ways to generate: {@link #generate(GenerateRequest)} blocks and returns the whole completion;
 * {@link #generate(GenerateRequest, GenerateListener)} calls back as tokens arrive; {@link #generateStream} is an
 * iterator over the raw responses. Tokenize, Detokenize, GetModelInfo and GetStatus block.
 *
 * <p>Deadlines come from {@link ClientConfig}: every unary call gets {@link ClientConfig#unaryDeadline()} (10 s by
 * default); Generate gets {@link ClientConfig#generateDeadline()}, none by default, because a generation's length
 * is bounded by {@code max_tokens} and the caller can cancel it.
 *
 * <p>Errors: every call throws {@link ExpertMeshException} (a {@link StatusRuntimeException}) carrying the gRPC
 * {@link Status}, e.g. INVALID_ARGUMENT with the rejected fields, RESOURCE_EXHAUSTED when the router's queue is
 * full, UNAVAILABLE when it cannot be reached, is loading or draining, DEADLINE_EXCEEDED.
 *
 * <p>Several routers: {@link #builder(List)} with several {@code host:port}, or one target whose name resolves to
 * several addresses ({@code dns:///routers.example:50051}). Calls are spread round robin over the routers that are
 * up, and a call that fails UNAVAILABLE before its first token is sent again, to the next router (see
 * {@link ChannelServiceConfig}); after a token it fails with UNAVAILABLE.
 *
 * <p>Thread-safe; one client (one HTTP/2 connection per router) serves any number of concurrent calls. Close it
 * when done.
 */
public final class ExpertMeshClient implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ExpertMeshClient.class);
    private static final Duration SHUTDOWN_GRACE = Duration.ofSeconds(5);

    private final String target;
    private final ManagedChannel ownedChannel;
    private final ClientConfig config;
    private final InferenceServiceGrpc.InferenceServiceBlockingStub blocking;
    private final InferenceServiceGrpc.InferenceServiceStub async;

    private ExpertMeshClient(String target, Channel channel, ManagedChannel ownedChannel, ClientConfig config) {
        this.target = target;
        this.ownedChannel = ownedChannel;
        this.config = config;
        if (!config.interceptors().isEmpty()) {
            // ClientInterceptors.intercept runs the last of its list first: reversed, the config's first is outermost
            channel = ClientInterceptors.intercept(channel, config.interceptors().reversed());
        }
        // also set per stub so a channel made by the caller gets the same limit
        var blockingStub = InferenceServiceGrpc.newBlockingStub(channel)
                .withMaxInboundMessageSize(config.maxInboundMessageSize());
        var asyncStub = InferenceServiceGrpc.newStub(channel).withMaxInboundMessageSize(config.maxInboundMessageSize());
        if (config.token() != null) {
            BearerTokenCredentials bearer = new BearerTokenCredentials(config.token());
            blockingStub = blockingStub.withCallCredentials(bearer);
            asyncStub = asyncStub.withCallCredentials(bearer);
        }
        this.blocking = blockingStub;
        this.async = asyncStub;
    }

    /** A plaintext client of the router at {@code target} ({@code host:port}) with the default config. */
    public static ExpertMeshClient connect(String target) {
        return builder(target).build();
    }

    /** A builder for a client of {@code target} ({@code host:port}, or any gRPC target URI). */
    public static Builder builder(String target) {
        return builder(Collections.singletonList(target));
    }

    /**
     * A builder for a client of these routers: one target as for {@link #builder(String)}, or several
     * {@code HOST:PORT} (calls spread round robin).
     *
     * @throws IllegalArgumentException for an empty list, an empty or malformed address, a repeated router, or a
     *                                  URI target among several
     */
    public static Builder builder(List<String> targets) {
        return new Builder(RouterTargets.of(targets));
    }

    /**
     * A client over a channel the caller made and owns (in-process channels in tests, a channel with interceptors);
     * {@link #close()} leaves it open. Only the deadlines, the message size limit, the bearer token and the
     * interceptors of {@code config} apply (the channel's own credentials decide TLS).
     */
    public static ExpertMeshClient over(Channel channel, ClientConfig config) {
        Objects.requireNonNull(channel, "channel");
        Objects.requireNonNull(config, "config");
        return new ExpertMeshClient(channel.authority(), channel, null, config);
    }

    /** Builds a client: the target, the channel credentials (plaintext by default) and the config. */
    public static final class Builder {
        private final RouterTargets targets;
        private ChannelCredentials credentials;
        private ClientConfig config = ClientConfig.defaults();

        private Builder(RouterTargets targets) {
            this.targets = targets;
        }

        /**
         * The channel credentials: plaintext ({@link InsecureChannelCredentials}) by default; for TLS pass
         * {@code TlsChannelCredentials.create()} or one built with trust roots and a client certificate. Or set
         * {@link ClientConfig#withTls} instead (not both).
         */
        public Builder credentials(ChannelCredentials credentials) {
            this.credentials = Objects.requireNonNull(credentials, "credentials");
            return this;
        }

        /** Deadlines, message size and keepalive. */
        public Builder config(ClientConfig config) {
            this.config = Objects.requireNonNull(config, "config");
            return this;
        }

        /** Creates the channel (it connects lazily, on the first call) and the client. */
        public ExpertMeshClient build() {
            if (credentials != null && config.tls() != null) {
                throw new IllegalArgumentException("TLS is set twice: in the builder's credentials and in "
                        + "ClientConfig.tls; set one");
            }
            ChannelCredentials creds = credentials != null ? credentials
                    : config.tls() != null ? TlsCredentials.channel(config.tls()) : InsecureChannelCredentials.create();
            ManagedChannel channel = Grpc.newChannelBuilder(targets.channelTarget(), creds)
                    .defaultServiceConfig(ChannelServiceConfig.get())
                    .maxInboundMessageSize(config.maxInboundMessageSize())
                    .keepAliveTime(config.keepAliveTime().toNanos(), TimeUnit.NANOSECONDS)
                    .keepAliveTimeout(config.keepAliveTimeout().toNanos(), TimeUnit.NANOSECONDS)
                    .keepAliveWithoutCalls(config.keepAliveWithoutCalls())
                    .userAgent("expertmesh-java-client/0.1")
                    .build();
            log.debug("ExpertMesh client for {} ({}), {}", targets, creds.getClass().getSimpleName(), config);
            return new ExpertMeshClient(targets.toString(), channel, channel, config);
        }
    }

    /** The target this client calls; several routers comma-separated. */
    public String target() {
        return target;
    }

    /** The effective config. */
    public ClientConfig config() {
        return config;
    }

    /**
     * Generates and waits for the whole completion.
     *
     * @throws ExpertMeshException when the call fails, or the stream ends without a {@code finished} message
     */
    public GenerateResult generate(GenerateRequest request) {
        List<GeneratedToken> tokens = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        String requestId = request.getRequestId();
        Finished finished = null;
        try (GenerateStream stream = generateStream(request)) {
            while (stream.hasNext()) {
                GenerateResponse r = stream.next();
                requestId = r.getRequestId().isEmpty() ? requestId : r.getRequestId();
                for (GeneratedToken t : r.getTokensList()) {
                    tokens.add(t);
                    text.append(t.getText());
                }
                if (r.hasFinished()) {
                    finished = r.getFinished();
                }
            }
        }
        if (finished == null) {
            throw noFinished();
        }
        return new GenerateResult(requestId, tokens, text.toString(), finished);
    }

    /**
     * Generates and calls {@code listener} as tokens arrive; returns at once. The returned handle cancels the call
     * (callers that never cancel may ignore it).
     */
    public GenerateCall generate(GenerateRequest request, GenerateListener listener) {
        Objects.requireNonNull(listener, "listener");
        ListenerAdapter adapter = new ListenerAdapter(listener);
        withGenerateDeadline(async).generate(request, adapter);
        return adapter;
    }

    /**
     * Generates and returns the raw responses as a blocking iterator; read it to the end or close it. Errors
     * surface from {@code hasNext}/{@code next} as {@link ExpertMeshException}.
     */
    public GenerateStream generateStream(GenerateRequest request) {
        Context.CancellableContext context = Context.current().withCancellation();
        Context previous = context.attach();
        try {
            Iterator<GenerateResponse> responses = withGenerateDeadline(blocking).generate(request);
            return new GenerateStream(responses, context);
        } catch (RuntimeException e) {
            context.close();
            throw ExpertMeshException.from(e);
        } finally {
            context.detach(previous);
        }
    }

    /** Turns text or a chat into token ids. */
    public TokenizeResponse tokenize(TokenizeRequest request) {
        return unary(() -> withUnaryDeadline().tokenize(request));
    }

    /** Turns token ids into text. */
    public DetokenizeResponse detokenize(DetokenizeRequest request) {
        return unary(() -> withUnaryDeadline().detokenize(request));
    }

    /** Describes the served model. */
    public ModelInfo modelInfo() {
        return unary(() -> withUnaryDeadline().getModelInfo(GetModelInfoRequest.getDefaultInstance()));
    }

    /** The router's scheduler and KV cache state. */
    public ServerStatus status() {
        return unary(() -> withUnaryDeadline().getStatus(GetStatusRequest.getDefaultInstance()));
    }

    /** Shuts the channel down (when this client made it), waiting up to 5 s for open calls, then cancels them. */
    @Override
    public void close() {
        if (ownedChannel == null) {
            return;
        }
        ownedChannel.shutdown();
        try {
            if (!ownedChannel.awaitTermination(SHUTDOWN_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                log.warn("calls to {} still open after {}; cancelling them", target, SHUTDOWN_GRACE);
                ownedChannel.shutdownNow();
            }
        } catch (InterruptedException e) {
            ownedChannel.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }

    private InferenceServiceGrpc.InferenceServiceBlockingStub withUnaryDeadline() {
        // a deadline is an instant: it must be computed when the call starts, not when the stub is made
        return blocking.withDeadlineAfter(config.unaryDeadline().toNanos(), TimeUnit.NANOSECONDS);
    }

    private <S extends io.grpc.stub.AbstractStub<S>> S withGenerateDeadline(S stub) {
        Duration d = config.generateDeadline();
        return d == null ? stub : stub.withDeadlineAfter(d.toNanos(), TimeUnit.NANOSECONDS);
    }

    private static <T> T unary(Supplier<T> call) {
        try {
            return call.get();
        } catch (StatusRuntimeException e) {
            throw ExpertMeshException.from(e);
        }
    }

    private static ExpertMeshException noFinished() {
        return ExpertMeshException.from(Status.INTERNAL
                .withDescription("the Generate stream ended without a finished message").asRuntimeException());
    }

    /** Turns the gRPC stream callbacks into {@link GenerateListener} ones and holds the call for cancelling. */
    private static final class ListenerAdapter
            implements ClientResponseObserver<GenerateRequest, GenerateResponse>, GenerateCall {
        private final GenerateListener listener;
        private volatile ClientCallStreamObserver<GenerateRequest> call;
        private Finished finished;

        ListenerAdapter(GenerateListener listener) {
            this.listener = listener;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
            this.call = requestStream;
        }

        @Override
        public void onNext(GenerateResponse response) {
            if (!response.getTokensList().isEmpty()) {
                listener.onTokens(response.getTokensList());
            }
            if (response.hasFinished()) {
                finished = response.getFinished();
            }
        }

        @Override
        public void onError(Throwable t) {
            listener.onError(ExpertMeshException.from(t));
        }

        @Override
        public void onCompleted() {
            if (finished == null) {
                listener.onError(noFinished());
            } else {
                listener.onFinished(finished);
            }
        }

        @Override
        public void cancel(String reason) {
            call.cancel(reason, null);
        }
    }
}
