package io.expertmesh.cli;

import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.cluster.v1.RegisterWorkerRequest;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A worker joining a router at start: retried while the router is not up yet (it may start after us). */
final class RouterRegistration {
    private static final Logger LOG = LoggerFactory.getLogger(RouterRegistration.class);
    private static final int ATTEMPTS = 120;

    private RouterRegistration() {
    }

    /**
     * Registers {@code self} with {@code router} over {@code credentials}, sending {@code token} (null: none; a
     * router with --auth-tokens needs one with the admin scope).
     */
    static void register(String router, String self, ChannelCredentials credentials, CallCredentials token) {
        ManagedChannel channel = Grpc.newChannelBuilder(router, credentials).build();
        try {
            var stub = ClusterServiceGrpc.newBlockingStub(channel);
            if (token != null) {
                stub = stub.withCallCredentials(token);
            }
            for (int i = 0; i < ATTEMPTS; i++) {
                try {
                    stub.withDeadlineAfter(10, TimeUnit.SECONDS)
                            .registerWorker(RegisterWorkerRequest.newBuilder().setAddress(self).build());
                    LOG.info("Registered as {} with router {}", self, router);
                    return;
                } catch (StatusRuntimeException e) {
                    Status.Code code = e.getStatus().getCode();
                    // refusals that retrying cannot fix: a bad request, no such service, wrong or missing token
                    if (code == Status.Code.INVALID_ARGUMENT || code == Status.Code.UNIMPLEMENTED
                            || code == Status.Code.UNAUTHENTICATED || code == Status.Code.PERMISSION_DENIED) {
                        LOG.error("Router {} refused registration: {}", router, e.getStatus());
                        return;
                    }
                    Thread.sleep(1000);
                }
            }
            LOG.error("Could not register with router {} after {} attempts", router, ATTEMPTS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            channel.shutdownNow();
        }
    }
}
