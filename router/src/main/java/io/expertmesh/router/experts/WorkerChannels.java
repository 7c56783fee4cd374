package io.expertmesh.router.experts;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.util.List;

/**
 * Opens the router's channels to expert workers: the one place where their transport security and client
 * interceptors (tracing, credentials) are set.
 *
 * @param credentials  plaintext by default; TLS / mutual TLS credentials in a secured cluster
 * @param interceptors applied to every call to a worker, in order
 */
public record WorkerChannels(ChannelCredentials credentials, List<ClientInterceptor> interceptors) {
    /** Large enough for a long prefill's hidden states in F32 with per-expert outputs. */
    static final int MAX_MESSAGE_BYTES = 512 << 20;

    public WorkerChannels {
        interceptors = List.copyOf(interceptors);
    }

    /** Plaintext channels with no interceptors. */
    public static WorkerChannels plaintext() {
        return new WorkerChannels(InsecureChannelCredentials.create(), List.of());
    }

    /** A channel to the worker at {@code address} ({@code host:port}). */
    public ManagedChannel open(String address) {
        return Grpc.newChannelBuilder(address, credentials).maxInboundMessageSize(MAX_MESSAGE_BYTES)
                .intercept(interceptors).build();
    }
}
