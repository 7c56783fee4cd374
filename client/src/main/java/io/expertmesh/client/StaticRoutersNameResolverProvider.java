package io.expertmesh.client;

import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code expertmesh-routers:///HOST:PORT,HOST:PORT,...} scheme: a fixed list of routers, for gRPC's
 * round_robin policy to spread calls over (gRPC's own {@code dns} scheme names one host). {@link RouterTargets}
 * registers it and writes such targets; IPv6 brackets in them are percent-encoded.
 */
final class StaticRoutersNameResolverProvider extends NameResolverProvider {
    static final String SCHEME = "expertmesh-routers";

    @Override
    protected boolean isAvailable() {
        return true;
    }

    @Override
    protected int priority() {
        return 5; // the default; only this scheme is served, so it competes with nothing
    }

    @Override
    public String getDefaultScheme() {
        return SCHEME;
    }

    @Override
    public NameResolver newNameResolver(URI targetUri, NameResolver.Args args) {
        if (!SCHEME.equals(targetUri.getScheme()) || targetUri.getPath() == null) {
            return null;
        }
        List<RouterAddress> routers = new ArrayList<>();
        for (String r : targetUri.getPath().substring(1).split(",")) {
            routers.add(RouterAddress.parse(r));
        }
        return new StaticRoutersNameResolver(routers, args);
    }

    /** The target of a channel to these routers. */
    static String target(List<RouterAddress> routers) {
        String path = "/" + String.join(",", routers.stream().map(RouterAddress::authority).toList());
        try {
            return new URI(SCHEME, "", path, null, null).toString();
        } catch (java.net.URISyntaxException e) {
            throw new IllegalArgumentException("cannot make a target of " + routers + ": " + e.getMessage(), e);
        }
    }
}
