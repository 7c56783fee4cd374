package io.expertmesh.security;

import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks the {@code authorization: Bearer TOKEN} header of every call against {@link BearerTokens}:
 * no header or an unknown token is {@code UNAUTHENTICATED}, a known token without the method's scope is
 * {@code PERMISSION_DENIED}, an open method (health, reflection) passes untouched. A refused call never reaches
 * the service. Tokens never appear in logs or status messages.
 */
public final class BearerTokenInterceptor implements ServerInterceptor {
    private static final Logger LOG = LoggerFactory.getLogger(BearerTokenInterceptor.class);
    public static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private static final Metadata.Key<String> WWW_AUTHENTICATE =
            Metadata.Key.of("www-authenticate", Metadata.ASCII_STRING_MARSHALLER);
    private static final String BEARER = "bearer ";

    private final BearerTokens tokens;
    private final MethodScopes scopes;

    public BearerTokenInterceptor(BearerTokens tokens, MethodScopes scopes) {
        this.tokens = Objects.requireNonNull(tokens, "tokens");
        this.scopes = Objects.requireNonNull(scopes, "scopes");
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        String method = call.getMethodDescriptor().getFullMethodName();
        Optional<Scope> required = scopes.required(method);
        if (required.isEmpty()) {
            return next.startCall(call, headers);
        }
        String header = headers.get(AUTHORIZATION);
        if (header == null) {
            return refuse(call, Status.UNAUTHENTICATED.withDescription(
                    "missing bearer token: send the header 'authorization: Bearer TOKEN'"), true);
        }
        if (header.length() <= BEARER.length()
                || !header.substring(0, BEARER.length()).toLowerCase(Locale.ROOT).equals(BEARER)) {
            return refuse(call, Status.UNAUTHENTICATED.withDescription(
                    "the authorization header is not 'Bearer TOKEN'"), true);
        }
        Optional<Set<Scope>> granted = tokens.scopesOf(header.substring(BEARER.length()).strip());
        if (granted.isEmpty()) {
            return refuse(call, Status.UNAUTHENTICATED.withDescription("unknown bearer token"), true);
        }
        if (!granted.get().contains(required.get())) {
            return refuse(call, Status.PERMISSION_DENIED.withDescription("the bearer token lacks the scope '"
                    + required.get().wireName() + "' that " + method + " needs"), false);
        }
        return next.startCall(call, headers);
    }

    private static <Q, R> ServerCall.Listener<Q> refuse(ServerCall<Q, R> call, Status status, boolean challenge) {
        LOG.debug("Refused {} from {}: {} {}", call.getMethodDescriptor().getFullMethodName(),
                call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR), status.getCode(), status.getDescription());
        Metadata trailers = new Metadata();
        if (challenge) {
            trailers.put(WWW_AUTHENTICATE, "Bearer");
        }
        call.close(status, trailers);
        return new ServerCall.Listener<>() {
        };
    }
}
