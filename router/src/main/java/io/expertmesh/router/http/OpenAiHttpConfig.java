package io.expertmesh.router.http;

import io.expertmesh.security.MethodScopes;
import io.expertmesh.security.ServerSecurity;

/**
 * Settings of the OpenAI-compatible HTTP API.
 *
 * @param port              TCP port (0 = any free port), on all interfaces like the gRPC port
 * @param security          the gRPC server's TLS files and bearer tokens, used as they are
 * @param scopes            the gRPC server's scope table; each route is checked as the gRPC method it stands for
 * @param maxBufferedTokens tokens a streaming client may leave unread before it is cut off (as for gRPC)
 */
public record OpenAiHttpConfig(String host, int port, ServerSecurity security, MethodScopes scopes,
                               int maxBufferedTokens) {
    public OpenAiHttpConfig {
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("HTTP host is required (0.0.0.0: every interface)");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("HTTP port must be in [0, 65535], got " + port);
        }
        if (security == null || scopes == null) {
            throw new IllegalArgumentException("HTTP security and scopes are required (plaintext: "
                    + "ServerSecurity.plaintext())");
        }
        if (maxBufferedTokens < 1) {
            throw new IllegalArgumentException("max buffered tokens must be >= 1, got " + maxBufferedTokens);
        }
    }
}
