package io.expertmesh.security;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Objects;
import java.util.concurrent.Executor;

/**
 * Sends {@code authorization: Bearer TOKEN} with every call. The token goes out only over a connection with
 * privacy and integrity (TLS, in-process) or to a loopback address: over plaintext to another host anyone on
 * the path could read and replay it, so such a call fails with {@code UNAUTHENTICATED} before it is sent.
 */
public final class BearerTokenCredentials extends CallCredentials {
    private final BearerToken token;

    public BearerTokenCredentials(BearerToken token) {
        this.token = Objects.requireNonNull(token, "token");
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor appExecutor, MetadataApplier applier) {
        if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY && !isLoopback(info.getAuthority())) {
            applier.fail(Status.UNAUTHENTICATED.withDescription("refusing to send the bearer token over a plaintext "
                    + "connection to " + info.getAuthority() + "; use TLS"));
            return;
        }
        Metadata headers = new Metadata();
        headers.put(BearerTokenInterceptor.AUTHORIZATION, "Bearer " + token.value());
        applier.apply(headers);
    }

    /** Whether {@code authority} ({@code host[:port]}) is this machine: localhost or a loopback literal. */
    public static boolean isLoopback(String authority) {
        if (authority == null) {
            return false;
        }
        String host = authority;
        if (host.startsWith("[")) {
            int end = host.indexOf(']');
            host = end < 0 ? host : host.substring(1, end);
        } else if (host.indexOf(':') == host.lastIndexOf(':') && host.indexOf(':') >= 0) {
            host = host.substring(0, host.indexOf(':'));
        }
        if (host.equalsIgnoreCase("localhost")) {
            return true;
        }
        // literals only: a name is never resolved here (that could be slow, and DNS could lie)
        if (!host.matches("[0-9.]+|[0-9a-fA-F:]+")) {
            return false;
        }
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    @Override
    public String toString() {
        return "BearerTokenCredentials[****]";
    }
}
