package io.expertmesh.cli;

import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.cluster.v1.RegisterWorkerRequest;
import io.grpc.CallCredentials;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.Deadline;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A worker joining a router at start. The router may start after us: the call waits for the connection
 * (gRPC wait-for-ready) instead of polling it, and a router that is up but still loading (FAILED_PRECONDITION) or
 * restarting (UNAVAILABLE) is asked again after a growing pause, all within one overall deadline.
 */
final class RouterRegistration {
    private static final Logger LOG = LoggerFactory.getLogger(RouterRegistration.class);
    static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final Duration FIRST_PAUSE = Duration.ofMillis(250);
    private static final Duration LONGEST_PAUSE = Duration.ofSeconds(5);

    /** How a registration ended. */
    enum Outcome { REGISTERED, REFUSED, TIMED_OUT }

    private RouterRegistration() {
    }

    /**
     * Registers {@code self} with {@code router} over {@code credentials}, sending {@code token} (null: none; a
     * router with --auth-tokens needs one with the admin scope).
     */
    static Outcome register(String router, String self, ChannelCredentials credentials, CallCredentials token) {
        ManagedChannel channel = Grpc.newChannelBuilder(router, credentials).build();
        try {
            return register(channel, router, self, token, TIMEOUT);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Outcome.TIMED_OUT;
        } finally {
            channel.shutdownNow();
        }
    }

    static Outcome register(Channel channel, String router, String self, CallCredentials token, Duration timeout)
            throws InterruptedException {
        var stub = ClusterServiceGrpc.newBlockingStub(channel);
        if (token != null) {
            stub = stub.withCallCredentials(token);
        }
        Deadline deadline = Deadline.after(timeout.toNanos(), TimeUnit.NANOSECONDS);
        Duration pause = FIRST_PAUSE;
        while (true) {
            try {
                // wait-for-ready: a router not listening yet is waited for, not failed fast
                stub.withWaitForReady().withDeadline(deadline)
                        .registerWorker(RegisterWorkerRequest.newBuilder().setAddress(self).build());
                LOG.info("Registered as {} with router {}", self, router);
                return Outcome.REGISTERED;
            } catch (StatusRuntimeException e) {
                Status.Code code = e.getStatus().getCode();
                if (code == Status.Code.DEADLINE_EXCEEDED) {
                    LOG.error("Could not register with router {} within {} s: {}", router, timeout.toSeconds(),
                            e.getStatus());
                    return Outcome.TIMED_OUT;
                }
                // still loading, or going away and coming back: worth asking again; anything else is a refusal
                // that asking again cannot fix (a bad address, no such service, a wrong or missing token)
                if (code != Status.Code.FAILED_PRECONDITION && code != Status.Code.UNAVAILABLE) {
                    LOG.error("Router {} refused registration: {}", router, e.getStatus());
                    return Outcome.REFUSED;
                }
                long left = deadline.timeRemaining(TimeUnit.NANOSECONDS);
                if (left <= 0) {
                    LOG.error("Could not register with router {} within {} s: {}", router, timeout.toSeconds(),
                            e.getStatus());
                    return Outcome.TIMED_OUT;
                }
                TimeUnit.NANOSECONDS.sleep(Math.min(left, pause.toNanos()));
                pause = pause.multipliedBy(2).compareTo(LONGEST_PAUSE) > 0 ? LONGEST_PAUSE : pause.multipliedBy(2);
            }
        }
    }
}
