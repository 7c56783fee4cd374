package io.expertmesh.cli.cluster;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * What {@code expertmesh cluster} runs: the arguments of every child ({@code cache-node}s, {@code worker}s with no
 * experts, and a {@code serve} router that assigns the experts to those workers), from the ports chosen for them.
 * Pure: no processes, no sockets.
 *
 * @param model            the model directory every process loads
 * @param host             the address every process listens on and the others reach it at
 * @param routerPort       the router's gRPC port
 * @param workerPorts      one gRPC port per worker
 * @param cachePorts       one Hazelcast port per cache node; empty: the router's embedded member
 * @param redundantExperts {@code serve --redundant-experts}; null: the router's default
 * @param threads          {@code --threads} of every process
 * @param drainGraceSeconds {@code serve --drain-grace-seconds}
 * @param tls              the cluster's certificates; null: every gRPC link plaintext
 * @param authTokens       {@code serve --auth-tokens}; null: the router asks for no token
 * @param kvSecretFile     {@code serve --kv-secret-file}: the router signs and checks KV blocks with it (the tier
 *                         is loopback-only, so it is optional; {@code cluster} passes one generated per run so
 *                         that another local user who reaches 127.0.0.1 cannot feed the router blocks); null: none
 * @param moreRouterPorts  the gRPC ports of routers beyond the first: every router shares the expert placement
 *                         (and the KV blocks) through the cache nodes, so there must be at least one
 */
public record ClusterPlan(Path model, String host, int routerPort, List<Integer> workerPorts, List<Integer> cachePorts,
                          Integer redundantExperts, int threads, long drainGraceSeconds, ClusterTls tls,
                          Path authTokens, Path kvSecretFile, List<Integer> moreRouterPorts) {
    /** A cluster with one router. */
    public ClusterPlan(Path model, String host, int routerPort, List<Integer> workerPorts, List<Integer> cachePorts,
                       Integer redundantExperts, int threads, long drainGraceSeconds, ClusterTls tls,
                       Path authTokens, Path kvSecretFile) {
        this(model, host, routerPort, workerPorts, cachePorts, redundantExperts, threads, drainGraceSeconds, tls,
                authTokens, kvSecretFile, List.of());
    }

    /** A cluster whose router checks no KV block MAC. */
    public ClusterPlan(Path model, String host, int routerPort, List<Integer> workerPorts, List<Integer> cachePorts,
                       Integer redundantExperts, int threads, long drainGraceSeconds, ClusterTls tls,
                       Path authTokens) {
        this(model, host, routerPort, workerPorts, cachePorts, redundantExperts, threads, drainGraceSeconds, tls,
                authTokens, null);
    }

    /** A plaintext cluster without tokens. */
    public ClusterPlan(Path model, String host, int routerPort, List<Integer> workerPorts, List<Integer> cachePorts,
                       Integer redundantExperts, int threads, long drainGraceSeconds) {
        this(model, host, routerPort, workerPorts, cachePorts, redundantExperts, threads, drainGraceSeconds, null,
                null);
    }

    public ClusterPlan {
        workerPorts = List.copyOf(workerPorts);
        cachePorts = List.copyOf(cachePorts);
        moreRouterPorts = List.copyOf(moreRouterPorts);
        if (!moreRouterPorts.isEmpty() && cachePorts.isEmpty()) {
            throw new IllegalArgumentException("several routers share the expert placement through the cache tier: "
                    + "--cache-nodes must be >= 1");
        }
        if (workerPorts.isEmpty()) {
            throw new IllegalArgumentException("a cluster needs at least one worker");
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
    }

    public List<String> workerArgs(int i) {
        List<String> args = new ArrayList<>(List.of("worker", "--model", model.toString(), "--host", host,
                "--port", String.valueOf(workerPorts.get(i)), "--experts", "none", "--threads",
                String.valueOf(threads)));
        if (tls != null) {
            // mutual TLS: only certificates of the cluster CA connect, and of those only the router's may call
            args.addAll(List.of("--tls-cert", tls.workerCert().toString(), "--tls-key", tls.workerKey().toString(),
                    "--tls-client-ca", tls.ca().toString(), "--allowed-clients", tls.routerName()));
        }
        return args;
    }

    public List<String> cacheNodeArgs(int i) {
        return List.of("cache-node", "--host", host, "--port", String.valueOf(cachePorts.get(i)),
                "--members", join(cachePorts));
    }

    /** Every router's gRPC port, the first router's first. */
    public List<Integer> routerPorts() {
        List<Integer> all = new ArrayList<>(List.of(routerPort));
        all.addAll(moreRouterPorts);
        return all;
    }

    /** Every router's {@code host:port}, comma-separated (a client's {@code --target}). */
    public String routerTargets() {
        return join(routerPorts());
    }

    /** The first router's arguments. */
    public List<String> routerArgs() {
        return routerArgs(0);
    }

    /** Router {@code i}'s arguments: all routers alike but for the port. */
    public List<String> routerArgs(int i) {
        List<String> args = new ArrayList<>(List.of("serve", "--model", model.toString(), "--host", host,
                "--port", String.valueOf(routerPorts().get(i)), "--workers", join(workerPorts),
                "--threads", String.valueOf(threads), "--drain-grace-seconds", String.valueOf(drainGraceSeconds)));
        if (redundantExperts != null) {
            args.addAll(List.of("--redundant-experts", String.valueOf(redundantExperts)));
        }
        if (!cachePorts.isEmpty()) {
            args.addAll(List.of("--kv-store", "hazelcast-client", "--kv-members", join(cachePorts)));
        }
        if (tls != null) {
            args.addAll(List.of("--tls-cert", tls.routerCert().toString(), "--tls-key", tls.routerKey().toString(),
                    "--worker-tls-ca", tls.ca().toString(), "--worker-tls-cert", tls.routerCert().toString(),
                    "--worker-tls-key", tls.routerKey().toString()));
        }
        if (authTokens != null) {
            args.addAll(List.of("--auth-tokens", authTokens.toString()));
        }
        if (kvSecretFile != null) {
            args.addAll(List.of("--kv-secret-file", kvSecretFile.toString()));
        }
        return args;
    }

    /** {@code host:p1,host:p2,...}. */
    private String join(List<Integer> ports) {
        return ports.stream().map(p -> host + ":" + p).collect(Collectors.joining(","));
    }
}
