package io.expertmesh.client;

import io.grpc.Attributes;
import io.grpc.ChannelLogger;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.Status;
import io.grpc.SynchronizationContext;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;

/**
 * Resolves a fixed list of routers: one address group per router, holding all the addresses of its host (so
 * {@code localhost} tried as ::1 and 127.0.0.1 is still one router to the round_robin policy, which spreads calls
 * over groups). Each group carries its router's {@code host:port} as the authority override, so TLS checks every
 * router's certificate against the name it was given by, and the bearer token's loopback rule sees each router's
 * own host, not the first one's.
 */
final class StaticRoutersNameResolver extends NameResolver {
    private final List<RouterAddress> routers;
    private final SynchronizationContext sync;
    private final Executor offload;
    private final ChannelLogger logger;
    // the fields below only in the synchronization context
    private Listener2 listener;
    private boolean resolving;
    private boolean shutdown;

    StaticRoutersNameResolver(List<RouterAddress> routers, Args args) {
        this.routers = List.copyOf(routers);
        this.sync = args.getSynchronizationContext();
        Executor e = args.getOffloadExecutor();
        // host lookups block; the channel gives an executor for that (null only from hand-made Args)
        this.offload = e != null ? e : Runnable::run;
        this.logger = args.getChannelLogger();
    }

    @Override
    public String getServiceAuthority() {
        // the channel's default authority; every transport uses its own router's (the group's override)
        return routers.getFirst().authority();
    }

    @Override
    public void start(Listener2 listener) {
        this.listener = listener;
        resolve();
    }

    /** Called by the channel when a router's connection fails: its host may have moved. */
    @Override
    public void refresh() {
        resolve();
    }

    @Override
    public void shutdown() {
        shutdown = true;
    }

    private void resolve() {
        if (resolving || shutdown) {
            return;
        }
        resolving = true;
        offload.execute(() -> {
            List<EquivalentAddressGroup> groups = new ArrayList<>();
            List<String> unresolved = new ArrayList<>();
            for (RouterAddress router : routers) {
                try {
                    groups.add(group(router));
                } catch (UnknownHostException e) {
                    unresolved.add(router.authority());
                }
            }
            sync.execute(() -> deliver(groups, unresolved));
        });
    }

    private void deliver(List<EquivalentAddressGroup> groups, List<String> unresolved) {
        resolving = false;
        if (shutdown) {
            return;
        }
        if (groups.isEmpty()) {
            listener.onError(Status.UNAVAILABLE.withDescription("cannot resolve any router of " + routers));
            return;
        }
        if (!unresolved.isEmpty()) {
            // the others still serve; a later refresh (on a connection failure) tries these again
            logger.log(ChannelLogger.ChannelLogLevel.WARNING, "cannot resolve routers {0}", unresolved);
        }
        listener.onResult2(ResolutionResult.newBuilder().setAddresses(groups).build());
    }

    private static EquivalentAddressGroup group(RouterAddress router) throws UnknownHostException {
        List<SocketAddress> addresses = new ArrayList<>();
        for (InetAddress a : InetAddress.getAllByName(router.host())) {
            addresses.add(new InetSocketAddress(a, router.port()));
        }
        return new EquivalentAddressGroup(addresses, Attributes.newBuilder()
                .set(EquivalentAddressGroup.ATTR_AUTHORITY_OVERRIDE, router.authority()).build());
    }
}
