package io.expertmesh.router.experts;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.util.List;
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

    /** A channel to the worker at {@code address} ({@code host:port}). */
    public ManagedChannel open(String address) {
        ManagedChannelBuilder<?> b = Grpc.newChannelBuilder(address, credentials)
                .maxInboundMessageSize(MAX_MESSAGE_BYTES).intercept(interceptors);
        configurer.accept(b);
        return b.build();
    }
}
