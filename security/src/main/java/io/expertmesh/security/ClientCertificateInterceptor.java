package io.expertmesh.security;

import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Objects;
import java.util.Set;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * On a mutual-TLS server, lets a call through only when the client's certificate (already verified against the
 * client CA by the handshake) is one of the {@link AllowedClients}: a certificate the CA signed for something
 * else (a worker, a user) gets {@code PERMISSION_DENIED}; a call without a verified certificate (a plaintext or
 * in-process transport) {@code UNAUTHENTICATED}. Open services (health) pass.
 */
public final class ClientCertificateInterceptor implements ServerInterceptor {
    private static final Logger LOG = LoggerFactory.getLogger(ClientCertificateInterceptor.class);

    private final AllowedClients allowed;
    private final Set<String> openServices;

    public ClientCertificateInterceptor(AllowedClients allowed, Set<String> openServices) {
        this.allowed = Objects.requireNonNull(allowed, "allowed");
        this.openServices = Set.copyOf(openServices);
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                       ServerCallHandler<Q, R> next) {
        String method = call.getMethodDescriptor().getFullMethodName();
        if (openServices.contains(MethodDescriptor.extractFullServiceName(method))) {
            return next.startCall(call, headers);
        }
        X509Certificate leaf = peerCertificate(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
        Status refusal = null;
        if (leaf == null) {
            refusal = Status.UNAUTHENTICATED.withDescription(method + " needs a client certificate (mutual TLS)");
        } else if (!allowed.permits(leaf)) {
            refusal = Status.PERMISSION_DENIED.withDescription("the client certificate "
                    + CertificateIdentity.names(leaf) + " is not allowed to call " + method + "; allowed: " + allowed);
        }
        if (refusal == null) {
            return next.startCall(call, headers);
        }
        LOG.debug("Refused {} from {}: {}", method, call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR),
                refusal.getDescription());
        call.close(refusal, new Metadata());
        return new ServerCall.Listener<>() {
        };
    }

    private static X509Certificate peerCertificate(SSLSession session) {
        if (session == null) {
            return null;
        }
        try {
            Certificate[] chain = session.getPeerCertificates();
            return chain.length > 0 && chain[0] instanceof X509Certificate x ? x : null;
        } catch (SSLPeerUnverifiedException e) {
            return null;
        }
    }
}
