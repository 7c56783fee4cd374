package io.expertmesh.client;

import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import java.util.List;
import java.util.Map;

/**
 * The gRPC service config of every channel {@link ExpertMeshClient.Builder} makes: round_robin over the routers'
 * addresses, and a retry of UNAVAILABLE on the InferenceService's methods.
 *
 * <p>Why gRPC's retry policy and not a retry loop in this client: grpc-java retries a call only until it is
 * <em>committed</em>, and a call commits when the first response (its headers, which the server sends with the first
 * message) arrives. A router's Generate sends nothing before its first tokens and fails a request it cannot serve
 * (loading, draining, its workers gone) with a trailers-only UNAVAILABLE, so "not committed" is exactly "no token
 * received yet": the request is then safe to send again, and round_robin's next pick is another router. Once a
 * token has streamed the call is committed and an UNAVAILABLE reaches the caller, who decides (a silent resend
 * would repeat or contradict tokens already shown). The policy also covers every transport the stream is retried
 * on, the bearer token included, which a loop around the stub would have to rebuild; and the unary methods
 * (Tokenize, GetModelInfo, ...) have no side effects, so they are retried the same way.
 *
 * <p>With one router this resends an UNAVAILABLE request to the same router after a short backoff, at most twice.
 */
final class ChannelServiceConfig {
    /** Attempts of one call, the first included. */
    static final int MAX_ATTEMPTS = 3;

    private ChannelServiceConfig() {
    }

    /** The config as gRPC's JSON-like map (numbers as doubles, durations as strings, as its parser wants). */
    static Map<String, ?> get() {
        Map<String, Object> retry = Map.of(
                "maxAttempts", (double) MAX_ATTEMPTS,
                "initialBackoff", "0.05s",
                "maxBackoff", "1s",
                "backoffMultiplier", 2.0,
                "retryableStatusCodes", List.of("UNAVAILABLE"));
        Map<String, Object> method = Map.of(
                "name", List.of(Map.of("service", InferenceServiceGrpc.SERVICE_NAME)),
                "retryPolicy", retry);
        return Map.of(
                "loadBalancingConfig", List.of(Map.of("round_robin", Map.of())),
                "methodConfig", List.of(method));
    }
}
