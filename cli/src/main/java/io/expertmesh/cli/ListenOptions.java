package io.expertmesh.cli;

import io.expertmesh.security.ServerSecurity;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/**
 * {@code --host}: the address a gRPC server ({@code serve}, {@code worker}) listens on. The servers' own
 * constructors listen on every interface; this builds the same server on one address.
 */
final class ListenOptions {
    private static final Logger LOG = LoggerFactory.getLogger(ListenOptions.class);
    /** RouterServer's inbound limit (a prompt of a long context as token ids). */
    static final int ROUTER_MAX_INBOUND_BYTES = 16 << 20;
    /** ExpertWorkerServer's inbound limit (a step's hidden states of every token). */
    static final int WORKER_MAX_INBOUND_BYTES = 256 << 20;

    // Default every interface: containers and the compose and Kubernetes deployments reach the servers from other
    // hosts. `cluster` passes 127.0.0.1, because without TLS and tokens nothing there authenticates a caller.
    @Option(names = "--host", paramLabel = "ADDRESS",
            description = "Address to listen on (default 0.0.0.0: every interface; 127.0.0.1: this machine only).")
    String host = "0.0.0.0";

    /** Whether {@link #host} is every interface (then others reach this server at an address of their choice). */
    boolean isWildcard() {
        return address(0).getAddress().isAnyLocalAddress();
    }

    InetSocketAddress address(int port) {
        InetSocketAddress address = new InetSocketAddress(host.strip(), port);
        if (address.isUnresolved()) {
            throw new IllegalArgumentException("--host " + host + " is not an address (or a name that resolves)");
        }
        return address;
    }

    /**
     * A Netty server builder on {@code host:port} with {@code security}'s credentials (its PEM files are read and
     * checked here), for {@code RouterServer}'s and {@code ExpertWorkerServer}'s builder constructors.
     */
    NettyServerBuilder serverBuilder(String what, int port, ServerSecurity security, int maxInboundBytes) {
        LOG.info("{} listening on {} ({})", what, address(port), security);
        security.warnings().forEach(w -> LOG.warn("{} security: {}", what, w));
        return NettyServerBuilder.forAddress(address(port), security.credentials())
                .maxInboundMessageSize(maxInboundBytes);
    }
}
