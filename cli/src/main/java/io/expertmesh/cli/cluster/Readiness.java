package io.expertmesh.cli.cluster;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Waits for a started child to be ready: gRPC health {@code SERVING} (routers and workers report NOT_SERVING while
 * they load), or a TCP port that accepts connections (a Hazelcast member). Polls, because a process that is still
 * starting refuses connections and there is nothing to subscribe to yet.
 */
public final class Readiness {
    private static final Duration POLL = Duration.ofMillis(200);

    private Readiness() {
    }

    /** Why a wait ended without the child being ready. */
    public static final class NotReadyException extends Exception {
        public NotReadyException(String message) {
            super(message);
        }
    }

    /**
     * Returns once {@code host:port} answers {@code grpc.health.v1.Health/Check} (service "") with SERVING.
     *
     * @param gaveUp checked between polls: true (the child died) ends the wait with {@link NotReadyException}
     */
    public static void awaitGrpcServing(String what, String host, int port, Duration timeout, BooleanSupplier gaveUp)
            throws NotReadyException, InterruptedException {
        awaitGrpcServing(what, host, port, InsecureChannelCredentials.create(), timeout, gaveUp);
    }

    /** As above, over {@code credentials} (TLS for a router or worker started with {@code --tls-cert}). */
    public static void awaitGrpcServing(String what, String host, int port, ChannelCredentials credentials,
                                        Duration timeout, BooleanSupplier gaveUp)
            throws NotReadyException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        ManagedChannel channel = Grpc.newChannelBuilderForAddress(host, port, credentials).build();
        try {
            HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
            String last = "no answer";
            while (true) {
                if (gaveUp.getAsBoolean()) {
                    throw new NotReadyException(what + " ended before it was serving (last health: " + last + ")");
                }
                try {
                    // A process still starting refuses the connection at once; the deadline only bounds a hung one
                    // (and a first call's channel set-up, which takes seconds on a busy machine).
                    ServingStatus s = health.withDeadlineAfter(5, TimeUnit.SECONDS)
                            .check(HealthCheckRequest.getDefaultInstance()).getStatus();
                    if (s == ServingStatus.SERVING) {
                        return;
                    }
                    last = s.name();
                } catch (StatusRuntimeException e) {
                    last = e.getStatus().getCode().name();
                }
                if (System.nanoTime() > deadline) {
                    throw new NotReadyException(what + " was not SERVING on " + host + ":" + port + " after "
                            + timeout.toSeconds() + " s (last health: " + last + ")");
                }
                Thread.sleep(POLL);
            }
        } finally {
            channel.shutdownNow();
        }
    }

    /** Returns once {@code host:port} accepts a TCP connection. */
    public static void awaitTcp(String what, String host, int port, Duration timeout, BooleanSupplier gaveUp)
            throws NotReadyException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (gaveUp.getAsBoolean()) {
                throw new NotReadyException(what + " ended before it accepted connections on " + host + ":" + port);
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(host, port), 1000);
                return;
            } catch (IOException notYet) {
                // refused: still starting
            }
            if (System.nanoTime() > deadline) {
                throw new NotReadyException(what + " did not accept connections on " + host + ":" + port
                        + " after " + timeout.toSeconds() + " s");
            }
            Thread.sleep(POLL);
        }
    }
}
