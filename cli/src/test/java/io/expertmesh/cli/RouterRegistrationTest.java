package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.cluster.v1.RegisterWorkerRequest;
import io.expertmesh.proto.cluster.v1.RegisterWorkerResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@code worker --register-with}: waiting for the router, asking again while it loads, giving up on a refusal. */
class RouterRegistrationTest {
    private final String name = InProcessServerBuilder.generateName();
    private final ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
    private Server server;

    /** Answers RegisterWorker with the scripted statuses in turn, then OK. */
    private static final class ScriptedRouter extends ClusterServiceGrpc.ClusterServiceImplBase {
        final AtomicInteger calls = new AtomicInteger();
        final Queue<Status> script;

        ScriptedRouter(List<Status> script) {
            this.script = new ArrayDeque<>(script);
        }

        @Override
        public synchronized void registerWorker(RegisterWorkerRequest request,
                                                StreamObserver<RegisterWorkerResponse> observer) {
            calls.incrementAndGet();
            Status next = script.poll();
            if (next != null && !next.isOk()) {
                observer.onError(next.asRuntimeException());
                return;
            }
            observer.onNext(RegisterWorkerResponse.getDefaultInstance());
            observer.onCompleted();
        }
    }

    private ScriptedRouter serve(List<Status> script) throws Exception {
        ScriptedRouter router = new ScriptedRouter(script);
        server = InProcessServerBuilder.forName(name).addService(router).build().start();
        return router;
    }

    @AfterEach
    void stop() {
        channel.shutdownNow();
        if (server != null) {
            server.shutdownNow();
        }
    }

    private RouterRegistration.Outcome register(Duration timeout) throws InterruptedException {
        return RouterRegistration.register(channel, "router", "127.0.0.1:50061", null, timeout);
    }

    @Test
    void register_routerNotListeningYet_waitsForItAndRegisters() throws Exception {
        CompletableFuture<RouterRegistration.Outcome> outcome = CompletableFuture.supplyAsync(() -> {
            try {
                return register(Duration.ofSeconds(60));
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        ScriptedRouter router = serve(List.of()); // the router comes up after the worker began
        assertEquals(RouterRegistration.Outcome.REGISTERED, outcome.get(60, TimeUnit.SECONDS));
        assertEquals(1, router.calls.get(), "one call, held until the router was there");
    }

    @Test
    void register_routerStillLoading_askedAgainUntilItAccepts() throws Exception {
        ScriptedRouter router = serve(List.of(Status.FAILED_PRECONDITION.withDescription("still starting"),
                Status.UNAVAILABLE.withDescription("draining")));
        assertEquals(RouterRegistration.Outcome.REGISTERED, register(Duration.ofSeconds(60)));
        assertEquals(3, router.calls.get());
    }

    @Test
    void register_tokenWithoutAdminScope_givesUpAtOnce() throws Exception {
        ScriptedRouter router = serve(List.of(Status.PERMISSION_DENIED));
        assertEquals(RouterRegistration.Outcome.REFUSED, register(Duration.ofSeconds(60)));
        assertEquals(1, router.calls.get());
    }

    @Test
    void register_routerNeverReady_timesOutAtTheDeadline() throws Exception {
        serve(java.util.Collections.nCopies(1000, Status.FAILED_PRECONDITION));
        assertEquals(RouterRegistration.Outcome.TIMED_OUT, register(Duration.ofMillis(800)));
    }
}
