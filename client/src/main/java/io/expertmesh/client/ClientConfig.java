package io.expertmesh.client;

import io.expertmesh.security.BearerToken;
import io.expertmesh.security.TlsFiles;
import io.grpc.ClientInterceptor;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * Settings of an {@link ExpertMeshClient}; validated here, read once when the client is built.
 *
 * @param unaryDeadline         deadline of each Tokenize, Detokenize, GetModelInfo and GetStatus call, measured
 *                              from the moment the call starts
 * @param generateDeadline      deadline of each Generate call, or {@code null} for none (the default): a
 *                              generation may legitimately run for minutes on a CPU model, so the caller bounds
 *                              it with {@code max_tokens}, by closing the stream, or by setting this
 * @param maxInboundMessageSize largest response message accepted, in bytes; gRPC's default is 4 MiB. Our responses
 *                              are small except Tokenize of a long text (about 5 bytes per id), so 16 MiB
 *                              admits prompts of millions of tokens while still bounding memory per message
 * @param keepAliveTime         the client pings a connection that has carried no data for this long, so a
 *                              silently dead router (a network partition, a killed host) fails a long Generate
 *                              with UNAVAILABLE instead of hanging. A server refuses pings more often than its
 *                              {@code permitKeepAliveTime} (5 minutes by default in grpc-java) with GOAWAY
 *                              {@code too_many_pings}; lower this only together with the router's setting
 * @param keepAliveTimeout      how long a ping may go unanswered before the connection is declared dead
 * @param keepAliveWithoutCalls also ping while no call is open (off: an idle client costs the router nothing)
 * @param tls                   TLS to the router: trust roots ({@code null} in it: the JDK's) and optionally a client
 *                              certificate for a router with mutual TLS; {@code null}: plaintext (or the builder's
 *                              {@code credentials})
 * @param token                 bearer token sent with every call, or {@code null}; sent only over TLS or to a
 *                              loopback address (the call fails UNAUTHENTICATED otherwise); masked in
 *                              {@link #toString()}
 * @param interceptors          gRPC client interceptors every call of the client goes through, the first of the
 *                              list outermost (it sees each call first). The hook for tracing without this module
 *                              depending on OpenTelemetry: e.g. {@code Telemetry.clientInterceptor(...)} of module
 *                              {@code telemetry}, or OpenTelemetry's {@code GrpcTelemetry.newClientInterceptor()},
 *                              puts the caller's current span context ({@code traceparent}) into each call's
 *                              metadata, and the router's request span becomes its child. Empty by default
 */
public record ClientConfig(Duration unaryDeadline, Duration generateDeadline, int maxInboundMessageSize,
                           Duration keepAliveTime, Duration keepAliveTimeout, boolean keepAliveWithoutCalls,
                           TlsFiles tls, BearerToken token, List<ClientInterceptor> interceptors) {

    /** Default of {@link #unaryDeadline}: the helpers answer in milliseconds; 10 s covers a busy router. */
    public static final Duration DEFAULT_UNARY_DEADLINE = Duration.ofSeconds(10);
    /** Default of {@link #maxInboundMessageSize}: 16 MiB. */
    public static final int DEFAULT_MAX_INBOUND_MESSAGE_SIZE = 16 << 20;
    /** Default of {@link #keepAliveTime}: grpc-java's server-side minimum, so a default router accepts it. */
    public static final Duration DEFAULT_KEEP_ALIVE_TIME = Duration.ofMinutes(5);
    /** Default of {@link #keepAliveTimeout}. */
    public static final Duration DEFAULT_KEEP_ALIVE_TIMEOUT = Duration.ofSeconds(20);

    /** Settings without interceptors. */
    public ClientConfig(Duration unaryDeadline, Duration generateDeadline, int maxInboundMessageSize,
                        Duration keepAliveTime, Duration keepAliveTimeout, boolean keepAliveWithoutCalls,
                        TlsFiles tls, BearerToken token) {
        this(unaryDeadline, generateDeadline, maxInboundMessageSize, keepAliveTime, keepAliveTimeout,
                keepAliveWithoutCalls, tls, token, List.of());
    }

    public ClientConfig {
        Objects.requireNonNull(interceptors, "interceptors (empty for none)");
        if (interceptors.stream().anyMatch(Objects::isNull)) {
            throw new IllegalArgumentException("interceptors must not contain null");
        }
        interceptors = List.copyOf(interceptors);
        Objects.requireNonNull(unaryDeadline, "unaryDeadline");
        Objects.requireNonNull(keepAliveTime, "keepAliveTime");
        Objects.requireNonNull(keepAliveTimeout, "keepAliveTimeout");
        requirePositive(unaryDeadline, "unaryDeadline");
        if (generateDeadline != null) {
            requirePositive(generateDeadline, "generateDeadline");
        }
        requirePositive(keepAliveTime, "keepAliveTime");
        requirePositive(keepAliveTimeout, "keepAliveTimeout");
        if (maxInboundMessageSize < 1024) {
            throw new IllegalArgumentException("maxInboundMessageSize must be at least 1024 bytes, got "
                    + maxInboundMessageSize);
        }
    }

    /** The defaults: 10 s unary deadline, no Generate deadline, 16 MiB messages, keepalive every 5 min. */
    public static ClientConfig defaults() {
        return new ClientConfig(DEFAULT_UNARY_DEADLINE, null, DEFAULT_MAX_INBOUND_MESSAGE_SIZE,
                DEFAULT_KEEP_ALIVE_TIME, DEFAULT_KEEP_ALIVE_TIMEOUT, false, null, null, List.of());
    }

    /** This config with another unary deadline. */
    public ClientConfig withUnaryDeadline(Duration deadline) {
        return new ClientConfig(deadline, generateDeadline, maxInboundMessageSize, keepAliveTime,
                keepAliveTimeout, keepAliveWithoutCalls, tls, token, interceptors);
    }

    /** This config with another Generate deadline ({@code null}: none). */
    public ClientConfig withGenerateDeadline(Duration deadline) {
        return new ClientConfig(unaryDeadline, deadline, maxInboundMessageSize, keepAliveTime,
                keepAliveTimeout, keepAliveWithoutCalls, tls, token, interceptors);
    }

    /** This config with another largest accepted message size. */
    public ClientConfig withMaxInboundMessageSize(int bytes) {
        return new ClientConfig(unaryDeadline, generateDeadline, bytes, keepAliveTime, keepAliveTimeout,
                keepAliveWithoutCalls, tls, token, interceptors);
    }

    /** This config with other keepalive settings. */
    public ClientConfig withKeepAlive(Duration time, Duration timeout, boolean withoutCalls) {
        return new ClientConfig(unaryDeadline, generateDeadline, maxInboundMessageSize, time, timeout,
                withoutCalls, tls, token, interceptors);
    }

    /** This config over TLS with these files ({@code TlsFiles.client(caPem)}); {@code null}: plaintext. */
    public ClientConfig withTls(TlsFiles files) {
        if (files != null && files.requireClientAuth()) {
            throw new IllegalArgumentException("client TLS files cannot require client auth (a server setting)");
        }
        return new ClientConfig(unaryDeadline, generateDeadline, maxInboundMessageSize, keepAliveTime,
                keepAliveTimeout, keepAliveWithoutCalls, files, token, interceptors);
    }

    /** This config sending {@code token} as {@code authorization: Bearer ...}; {@code null}: no token. */
    public ClientConfig withToken(BearerToken token) {
        return new ClientConfig(unaryDeadline, generateDeadline, maxInboundMessageSize, keepAliveTime,
                keepAliveTimeout, keepAliveWithoutCalls, tls, token, interceptors);
    }

    /**
     * This config with these client interceptors (replacing any set before), the first outermost; e.g.
     * {@code withInterceptors(List.of(telemetry.clientInterceptor(ClientSpanCustomizer.NONE)))} to send the
     * current trace context with every call.
     */
    public ClientConfig withInterceptors(List<ClientInterceptor> interceptors) {
        return new ClientConfig(unaryDeadline, generateDeadline, maxInboundMessageSize, keepAliveTime,
                keepAliveTimeout, keepAliveWithoutCalls, tls, token, interceptors);
    }

    private static void requirePositive(Duration d, String name) {
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, got " + d);
        }
    }
}
