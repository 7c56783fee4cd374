package io.expertmesh.router;

import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.experts.ExpertClusterConfig;
import io.expertmesh.worker.ExpertSelection;
import io.expertmesh.worker.ExpertWorkerServer;
import io.expertmesh.worker.WorkerConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Expert workers on real loopback sockets, in this JVM, holding nothing until a router assigns experts; and
 * routers using them.
 */
final class ExpertWorkers implements AutoCloseable {
    final List<ExpertWorkerServer> servers = new ArrayList<>();

    ExpertWorkers(Path model, int count) throws Exception {
        this(model, count, true);
    }

    /** {@code count} workers; {@code nativeKernels false} keeps their products in the Vector API kernels. */
    ExpertWorkers(Path model, int count, boolean nativeKernels) throws Exception {
        for (int i = 0; i < count; i++) {
            ExpertWorkerServer s = new ExpertWorkerServer(new WorkerConfig(model, 0, ExpertSelection.NONE),
                    new VectorKernels(ComputePool.create(1), nativeKernels)).start();
            s.awaitLoaded();
            servers.add(s);
        }
    }

    List<String> addresses(int count) {
        return servers.subList(0, count).stream().map(s -> "127.0.0.1:" + s.port()).toList();
    }

    /** Kills worker {@code i} at once (its calls in flight fail, its port closes). */
    void kill(int i) {
        servers.get(i).close();
    }

    static ExpertClusterConfig config(List<String> workers, int redundant) {
        // Fast failure detection for tests: deadlines of seconds, health every 200 ms.
        return new ExpertClusterConfig(workers, redundant, io.expertmesh.router.experts.WireFormat.EXACT,
                Duration.ofSeconds(20), Duration.ofSeconds(20), Duration.ofMillis(200), Duration.ofSeconds(20),
                Duration.ZERO, 2);
    }

    static TestRouter router(Path model, EngineConfig engine, ExpertClusterConfig experts) throws Exception {
        RouterConfig config = new RouterConfig(0, model, engine, 4096, Duration.ofSeconds(2),
                io.expertmesh.kvcache.KvStoreConfig.builder(io.expertmesh.kvcache.KvStoreConfig.Mode.NONE).build(),
                experts);
        TestRouter r = new TestRouter(config, (RouterServer.ModelLoader) f -> TestModels.load(model, f));
        r.server.awaitLoaded();
        return r;
    }

    @Override
    public void close() {
        for (ExpertWorkerServer s : servers) {
            s.close();
        }
    }
}
