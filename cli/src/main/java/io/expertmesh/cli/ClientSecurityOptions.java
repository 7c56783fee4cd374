package io.expertmesh.cli;

import io.expertmesh.client.ClientConfig;
import io.expertmesh.security.BearerToken;
import io.expertmesh.security.BearerTokenCredentials;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.AbstractStub;
import java.nio.file.Path;
import java.util.function.UnaryOperator;
import picocli.CommandLine.Option;

/** How a command that calls a router connects: plaintext or TLS (with a client certificate), and a bearer token. */
final class ClientSecurityOptions {
    /** The environment variable a token is taken from when there is no {@code --token-file}. */
    static final String TOKEN_ENV = "EXPERTMESH_TOKEN";

    @Option(names = "--tls", description = "Connect over TLS, checking the router against the JDK's default trust "
            + "roots (--tls-ca implies TLS).")
    boolean tls;

    @Option(names = "--tls-ca", paramLabel = "FILE",
            description = "PEM CA certificate(s) to check the router's certificate with; turns TLS on.")
    Path tlsCa;

    @Option(names = "--tls-cert", paramLabel = "FILE",
            description = "PEM client certificate chain, for a router with mutual TLS (with --tls-key).")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "PEM PKCS#8 private key of --tls-cert.")
    Path tlsKey;

    @Option(names = "--token-file", paramLabel = "FILE",
            description = "File holding the bearer token sent to the router (default: the environment variable "
                    + TOKEN_ENV + "). Sent only over TLS or to a loopback address.")
    Path tokenFile;

    /** Reads environment variables; tests replace it. */
    UnaryOperator<String> env = System::getenv;

    /** {@code config} with the TLS files and the bearer token these options ask for. */
    ClientConfig applyTo(ClientConfig config) {
        if ((tlsCert == null) != (tlsKey == null)) {
            throw new IllegalArgumentException("--tls-cert and --tls-key go together");
        }
        TlsFiles files = null;
        if (tls || tlsCa != null || tlsCert != null) {
            files = tlsCert != null ? TlsFiles.client(tlsCa, tlsCert, tlsKey) : TlsFiles.client(tlsCa);
        }
        BearerToken token = null;
        if (tokenFile != null) {
            token = BearerToken.fromFile(tokenFile);
        } else {
            String fromEnv = env.apply(TOKEN_ENV);
            if (fromEnv != null && !fromEnv.isBlank()) {
                try {
                    token = BearerToken.of(fromEnv);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(TOKEN_ENV + ": " + e.getMessage());
                }
            }
        }
        return config.withTls(files).withToken(token);
    }

    /** A raw channel to {@code target} with these options' TLS (for stubs other than the client library's). */
    ManagedChannel channel(String target) {
        ClientConfig c = applyTo(ClientConfig.defaults());
        return Grpc.newChannelBuilder(target, c.tls() == null ? InsecureChannelCredentials.create()
                : TlsCredentials.channel(c.tls())).build();
    }

    /** {@code stub} sending these options' bearer token, if any. */
    <S extends AbstractStub<S>> S withToken(S stub) {
        BearerToken token = applyTo(ClientConfig.defaults()).token();
        return token == null ? stub : stub.withCallCredentials(new BearerTokenCredentials(token));
    }
}
