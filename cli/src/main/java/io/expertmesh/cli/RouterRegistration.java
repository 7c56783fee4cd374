package io.expertmesh.cli;

import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.cluster.v1.RegisterWorkerRequest;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
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

    static void register(String router, String self) {
        ManagedChannel channel = Grpc.newChannelBuilder(router, InsecureChannelCredentials.create()).build();
        try {
            var stub = ClusterServiceGrpc.newBlockingStub(channel);
            for (int i = 0; i < ATTEMPTS; i++) {
                try {
                    stub.withDeadlineAfter(10, TimeUnit.SECONDS)
                            .registerWorker(RegisterWorkerRequest.newBuilder().setAddress(self).build());
                    LOG.info("Registered as {} with router {}", self, router);
                    return;
                } catch (StatusRuntimeException e) {
                    Status.Code code = e.getStatus().getCode();
                    if (code == Status.Code.INVALID_ARGUMENT || code == Status.Code.UNIMPLEMENTED) {
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
