package io.expertmesh.cli;

import io.expertmesh.security.ServerSecurity;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/**
 * {@code --host}: the address a gRPC server ({@code serve}, {@code worker}) listens on. The servers' own
 * constructors listen on every interface; this builds the same server on one address.
 */
final class ListenOptions {
    private static final Logger LOG = LoggerFactory.getLogger(ListenOptions.class);

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
     * The server's own transport ({@code RouterServer::transport}, {@code ExpertWorkerServer::transport}: its limits
     * and keepalive policy) on {@code host:port} with {@code security}'s credentials (its PEM files are read and
     * checked here), for the servers' builder constructors.
     */
    NettyServerBuilder serverBuilder(String what, int port, ServerSecurity security,
                                     BiFunction<InetSocketAddress, ServerSecurity, NettyServerBuilder> transport) {
        LOG.info("{} listening on {} ({})", what, address(port), security);
        security.warnings().forEach(w -> LOG.warn("{} security: {}", what, w));
        return transport.apply(address(port), security);
    }
}
