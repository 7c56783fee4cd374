package io.expertmesh.security;

import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * How a gRPC server protects itself: TLS or plaintext ({@code tls == null}), mutual TLS when {@code tls} requires
 * client certificates (and then which of them may call), and bearer tokens ({@code tokens == null}: none needed).
 * Validated here; {@link #toString()} names files and counts tokens, never their contents, so it can be logged.
 *
 * @param tls            the server's certificate, key and optional client CA, or {@code null} for plaintext
 * @param tokens         the accepted bearer tokens, or {@code null} for no token check
 * @param allowedClients with mutual TLS, the client certificates let in ({@code null}: any the client CA signed)
 */
public record ServerSecurity(TlsFiles tls, BearerTokens tokens, AllowedClients allowedClients) {

    public ServerSecurity {
        if (allowedClients == null) {
            allowedClients = AllowedClients.anySignedByClientCa();
        }
        if (tls != null && !tls.hasKeyPair()) {
            throw new TlsConfigException("a TLS server needs its certificate chain and private key");
        }
        if (!allowedClients.isAny() && !mutualTls(tls)) {
            throw new IllegalArgumentException("allowed client names need mutual TLS (a client CA)");
        }
    }

    /** No TLS, no tokens: loopback development and tests. */
    public static ServerSecurity plaintext() {
        return new ServerSecurity(null, null, null);
    }

    public boolean isMutualTls() {
        return mutualTls(tls);
    }

    /** What the server listens with; reads and checks the PEM files (a {@link TlsConfigException} if bad). */
    public ServerCredentials credentials() {
        return tls == null ? InsecureServerCredentials.create() : TlsCredentials.server(tls);
    }

    /**
     * The interceptors to install: the bearer-token check (with {@code scopes}) when there are tokens, the
     * client-certificate check when mutual TLS is on. Health and reflection stay open to both.
     */
    public List<ServerInterceptor> interceptors(MethodScopes scopes) {
        List<ServerInterceptor> out = new ArrayList<>();
        if (tokens != null) {
            out.add(new BearerTokenInterceptor(tokens, scopes));
        }
        if (isMutualTls()) {
            Set<String> open = new HashSet<>(MethodScopes.REFLECTION);
            open.add(MethodScopes.HEALTH);
            out.add(new ClientCertificateInterceptor(allowedClients, open));
        }
        return out;
    }

    /** Settings worth a warning at start-up (a weaker setup than it may look), one sentence each. */
    public List<String> warnings() {
        List<String> w = new ArrayList<>();
        if (tokens != null && tls == null) {
            w.add("bearer tokens are checked but the server is plaintext: tokens cross the network readable "
                    + "(clients send them only to loopback addresses); add TLS");
        }
        if (isMutualTls() && allowedClients.isAny()) {
            w.add("mutual TLS lets in any certificate the client CA signed; use a CA that signs only the callers, "
                    + "or name them (allowed clients)");
        }
        return w;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(tls == null ? "plaintext" : "TLS (" + tls.describe() + ")");
        if (isMutualTls()) {
            sb.append(", clients allowed: ").append(allowedClients);
        }
        sb.append(tokens == null ? ", no bearer tokens" : ", " + tokens);
        return sb.toString();
    }

    private static boolean mutualTls(TlsFiles tls) {
        return tls != null && tls.requireClientAuth();
    }
}
