package io.expertmesh.router;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.telemetry.Telemetry;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.Supplier;

/** An in-process router for tests, with blocking and async stubs; closes everything it made. */
final class TestRouter implements AutoCloseable {
    final RouterServer server;
    final ManagedChannel channel;
    final InferenceServiceGrpc.InferenceServiceBlockingStub blocking;
    final InferenceServiceGrpc.InferenceServiceStub async;

    TestRouter(Path modelDir, EngineConfig engine, Supplier<LoadedModel> loader) throws IOException {
        this(modelDir, engine, loader, 4096);
    }

    TestRouter(Path modelDir, EngineConfig engine, Supplier<LoadedModel> loader, int maxBuffered) throws IOException {
        this(modelDir, engine, loader, maxBuffered, Duration.ofSeconds(2));
    }

    TestRouter(Path modelDir, EngineConfig engine, Supplier<LoadedModel> loader, int maxBuffered, Duration drainGrace)
            throws IOException {
        this(new RouterConfig(0, modelDir, engine, maxBuffered, drainGrace), loader);
    }

    TestRouter(RouterConfig config, Supplier<LoadedModel> loader) throws IOException {
        this(config, loader, Telemetry.noop());
    }

    TestRouter(RouterConfig config, Supplier<LoadedModel> loader, Telemetry telemetry) throws IOException {
        this(config, (RouterServer.ModelLoader) experts -> loader.get(), telemetry);
    }

    /** A router whose routed experts run on expert workers, opened by {@code loader}. */
    TestRouter(RouterConfig config, RouterServer.ModelLoader loader) throws IOException {
        this(config, loader, Telemetry.noop());
    }

    /** As above, reporting to {@code telemetry}. */
    TestRouter(RouterConfig config, RouterServer.ModelLoader loader, Telemetry telemetry) throws IOException {
        String name = InProcessServerBuilder.generateName();
        server = new RouterServer(config, InProcessServerBuilder.forName(name).directExecutor(), telemetry);
        server.start(loader);
        channel = InProcessChannelBuilder.forName(name).directExecutor().build();
        blocking = InferenceServiceGrpc.newBlockingStub(channel);
        async = InferenceServiceGrpc.newStub(channel);
    }

    /** A router with a distributed KV tier; starts loading (call {@code server.awaitLoaded()}). */
    static TestRouter withKvStore(Path modelDir, EngineConfig engine, KvStoreConfig kvStore) throws IOException {
        return new TestRouter(new RouterConfig(0, modelDir, engine, 4096, Duration.ofSeconds(2), kvStore),
                () -> TestModels.load(modelDir));
    }

    static TestRouter started(Path modelDir, EngineConfig engine) throws Exception {
        TestRouter r = new TestRouter(modelDir, engine, () -> TestModels.load(modelDir));
        r.server.awaitLoaded();
        return r;
    }

    /** A whole generation: its tokens and its end. */
    record Result(List<GeneratedToken> tokens, Finished finished) {
        List<Integer> ids() {
            return tokens.stream().map(GeneratedToken::getTokenId).toList();
        }

        String text() {
            StringBuilder sb = new StringBuilder();
            tokens.forEach(t -> sb.append(t.getText()));
            return sb.toString();
        }
    }

    Result generate(GenerateRequest request) {
        List<GeneratedToken> tokens = new ArrayList<>();
        Finished finished = null;
        Iterator<GenerateResponse> it = blocking.generate(request);
        while (it.hasNext()) {
            GenerateResponse r = it.next();
            tokens.addAll(r.getTokensList());
            if (r.hasFinished()) {
                finished = r.getFinished();
            }
        }
        return new Result(tokens, finished);
    }

    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    /** Idempotent (a test may stop a router before its try-with-resources ends). */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        channel.shutdownNow();
        server.close();
    }
}
