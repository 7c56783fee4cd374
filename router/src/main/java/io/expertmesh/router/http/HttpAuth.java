package io.expertmesh.router.http;

import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.MethodScopes;
import io.expertmesh.security.Scope;
import io.expertmesh.security.ServerSecurity;
import io.vertx.core.http.HttpServerRequest;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * The gRPC API's access rules on HTTP: the same token file ({@link BearerTokens}: tokens, their scopes, the
 * constant-time comparison) and the same scope table ({@link MethodScopes}), asked about the gRPC method each
 * HTTP route stands for, so a token that may call Generate may call the completions endpoints and one that may
 * not, may not. With mutual TLS and named clients, the client certificate must be one of them, as for gRPC.
 * Tokens never appear in answers or logs.
 */
final class HttpAuth {
    private static final String BEARER = "bearer ";

    private final BearerTokens tokens;
    private final MethodScopes scopes;
    private final ServerSecurity security;

    HttpAuth(ServerSecurity security, MethodScopes scopes) {
        this.tokens = security.tokens();
        this.scopes = scopes;
        this.security = security;
    }

    /** Why {@code request} may not call {@code grpcMethod}'s HTTP twin, or null when it may. */
    OpenAiError refusal(HttpServerRequest request, String grpcMethod) {
        Optional<Scope> required = scopes.required(grpcMethod);
        if (required.isEmpty()) {
            return null;
        }
        if (security.isMutualTls() && !security.allowedClients().isAny() && !allowedClient(request)) {
            return new OpenAiError(403, "permission_error", "this client certificate is not allowed to call the "
                    + "API", null, "client_not_allowed");
        }
        if (tokens == null) {
            return null;
        }
        String header = request.getHeader("Authorization");
        if (header == null) {
            return unauthenticated("missing bearer token: send the header 'Authorization: Bearer TOKEN'");
        }
        if (header.length() <= BEARER.length()
                || !header.substring(0, BEARER.length()).toLowerCase(Locale.ROOT).equals(BEARER)) {
            return unauthenticated("the Authorization header is not 'Bearer TOKEN'");
        }
        Optional<Set<Scope>> granted = tokens.scopesOf(header.substring(BEARER.length()).strip());
        if (granted.isEmpty()) {
            return unauthenticated("unknown bearer token");
        }
        if (!granted.get().contains(required.get())) {
            return new OpenAiError(403, "permission_error", "the bearer token lacks the scope '"
                    + required.get().wireName() + "' that this endpoint needs", null, "insufficient_scope");
        }
        return null;
    }

    private static OpenAiError unauthenticated(String message) {
        return new OpenAiError(401, OpenAiError.INVALID_REQUEST, message, null, "invalid_api_key");
    }

    private boolean allowedClient(HttpServerRequest request) {
        try {
            List<Certificate> chain = request.connection().peerCertificates();
            return chain != null && !chain.isEmpty() && chain.getFirst() instanceof X509Certificate leaf
                    && security.allowedClients().permits(leaf);
        } catch (SSLPeerUnverifiedException e) {
            return false;
        }
    }
}
