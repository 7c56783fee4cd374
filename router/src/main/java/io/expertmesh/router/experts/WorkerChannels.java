package io.expertmesh.router.experts;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Opens the router's channels to expert workers: the one place where their transport security and client
 * interceptors (tracing, credentials) are set.
 *
 * @param credentials  plaintext by default; TLS / mutual TLS credentials in a secured cluster
 * @param interceptors applied to every call to a worker, in order
 * @param configurer   applied to each channel builder last (telemetry: gRPC's client metrics need the builder,
 *                     not just an interceptor)
 */
public record WorkerChannels(ChannelCredentials credentials, List<ClientInterceptor> interceptors,
                             Consumer<ManagedChannelBuilder<?>> configurer) {
    /** Large enough for a long prefill's hidden states in F32 with per-expert outputs. */
    static final int MAX_MESSAGE_BYTES = 512 << 20;

    public WorkerChannels {
        interceptors = List.copyOf(interceptors);
        if (configurer == null) {
            configurer = b -> { };
        }
    }

    /** Channels with these credentials and interceptors and nothing else configured. */
    public WorkerChannels(ChannelCredentials credentials, List<ClientInterceptor> interceptors) {
        this(credentials, interceptors, null);
    }

    /** Plaintext channels with no interceptors. */
    public static WorkerChannels plaintext() {
        return new WorkerChannels(InsecureChannelCredentials.create(), List.of());
    }

    /** These channels, with {@code more} applied to each builder after what is configured already. */
    public WorkerChannels alsoConfigure(Consumer<ManagedChannelBuilder<?>> more) {
        return new WorkerChannels(credentials, interceptors, configurer.andThen(more));
    }

    /**
     * HTTP/2 keepalive on worker channels: a ping after this long without a frame. The health check (every
     * second) keeps a channel busy while a worker is known; the ping catches a connection that died without a
     * FIN (a host gone, a NAT or firewall dropping idle flows) between checks, and keeps such middleboxes from
     * dropping a quiet connection. Workers permit pings this often ({@code ExpertWorkerServer}).
     */
    static final Duration KEEPALIVE_TIME = Duration.ofSeconds(30);
    /** An unanswered ping closes the connection after this long; calls on it fail UNAVAILABLE and are re-sent. */
    static final Duration KEEPALIVE_TIMEOUT = Duration.ofSeconds(10);

    /**
     * HTTP/2 flow-control window of worker channels: a step's expert outputs (hundreds of KiB to MiBs per call)
     * arrive without the worker waiting a round trip for a WINDOW_UPDATE, which costs most on a network with
     * latency. The same as the workers' ({@code ExpertWorkerServer.FLOW_CONTROL_WINDOW}).
     */
    static final int FLOW_CONTROL_WINDOW = 16 << 20;

    /**
     * A channel to the worker at {@code address} ({@code host:port}). Call callbacks run on the transport thread
     * (a direct executor): they only parse a response and complete a future ({@link WorkerClient#run}), so a
     * hand-off to another thread before waking the waiting dispatch would add a wake-up to every call for
     * nothing. Blocking stubs are unaffected (they run callbacks on the calling thread). TCP_NODELAY is Netty's
     * default.
     */
    public ManagedChannel open(String address) {
        ManagedChannelBuilder<?> b = Grpc.newChannelBuilder(address, credentials)
                .maxInboundMessageSize(MAX_MESSAGE_BYTES).intercept(interceptors)
                .keepAliveTime(KEEPALIVE_TIME.toMillis(), TimeUnit.MILLISECONDS)
                .keepAliveTimeout(KEEPALIVE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                .keepAliveWithoutCalls(true).directExecutor();
        if (b instanceof NettyChannelBuilder netty) {
            netty.flowControlWindow(FLOW_CONTROL_WINDOW);
        }
        configurer.accept(b);
        return b.build();
    }
}
