package io.expertmesh.client;

import io.grpc.NameResolverRegistry;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The routers a client calls, as given, and the gRPC channel target that reaches them. One target is passed to gRPC
 * unchanged ({@code host:port}, or any target URI such as {@code dns:///routers.example:50051}, whose addresses the
 * round_robin policy spreads calls over). Several must each be {@code HOST:PORT}; they become one
 * {@code expertmesh-routers:///...} target served by {@link StaticRoutersNameResolverProvider}.
 */
final class RouterTargets {
    static {
        // Registered in code rather than by META-INF/services, so it also works from a shaded or repackaged jar.
        // The scheme is this client's own; other channels of the process are unaffected.
        NameResolverRegistry.getDefaultRegistry().register(new StaticRoutersNameResolverProvider());
    }

    private final List<String> given;
    private final String channelTarget;

    private RouterTargets(List<String> given, String channelTarget) {
        this.given = given;
        this.channelTarget = channelTarget;
    }

    /**
     * @throws IllegalArgumentException for an empty list, a blank entry, a malformed or repeated {@code HOST:PORT}
     *                                  among several, or a URI target among several
     */
    static RouterTargets of(List<String> targets) {
        if (targets == null || targets.isEmpty()) {
            throw new IllegalArgumentException("no target given; expected HOST:PORT (or several, comma-separated)");
        }
        List<String> stripped = new ArrayList<>();
        for (String t : targets) {
            if (t == null || t.isBlank()) {
                throw new IllegalArgumentException("the target is empty; expected host:port");
            }
            stripped.add(t.strip());
        }
        if (stripped.size() == 1) {
            return new RouterTargets(List.copyOf(stripped), stripped.getFirst());
        }
        List<RouterAddress> routers = new ArrayList<>();
        Set<RouterAddress> seen = new HashSet<>();
        for (String t : stripped) {
            RouterAddress r = RouterAddress.parse(t);
            if (!seen.add(r)) {
                throw new IllegalArgumentException("router " + r + " is given twice");
            }
            routers.add(r);
        }
        return new RouterTargets(List.copyOf(stripped), StaticRoutersNameResolverProvider.target(routers));
    }

    /** The targets as given (stripped). */
    List<String> given() {
        return given;
    }

    /** What to pass to {@code Grpc.newChannelBuilder}. */
    String channelTarget() {
        return channelTarget;
    }

    /** The targets for messages: the one target, or all of them comma-separated. */
    @Override
    public String toString() {
        return String.join(",", given);
    }
}
