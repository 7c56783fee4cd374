package io.expertmesh.cli;

import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import io.expertmesh.worker.ExpertSelection;
import io.expertmesh.worker.ExpertWorkerServer;
import io.expertmesh.worker.WorkerConfig;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code expertmesh worker}: an expert worker holding some routed experts of every MoE layer of a model and
 * serving {@code expertmesh.expert.v1.ExpertService} on a gRPC port until SIGTERM.
 */
@Command(name = "worker", mixinStandardHelpOptions = true,
        description = "Serve a shard of a model's routed experts (ExpertService) on a gRPC port.")
final class WorkerCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerCommand.class);

    @Mixin
    ModelOptions model = new ModelOptions();

    @Mixin
    MetricsOptions metrics = new MetricsOptions();

    @Option(names = "--port", paramLabel = "P", description = "gRPC port (default 50061; 0 = any free port).")
    int port = 50061;

    @Option(names = "--experts", paramLabel = "SPEC",
            description = "Routed experts to hold in every MoE layer: all (default), none (a router assigns them), ids and ranges such as 0-7 "
                    + "or 0-3,9, or shard:I/N (every expert e with e % N == I).")
    String experts = "all";

    @Option(names = "--register-with", paramLabel = "HOST:PORT",
            description = "A router to join at start (it gives this worker experts by a rebalance).")
    String registerWith;

    @Option(names = "--advertise", paramLabel = "HOST:PORT",
            description = "Address the router reaches this worker at (default 127.0.0.1:<port>).")
    String advertise;

    @Override
    public Integer call() throws Exception {
        Path dir = model.resolveModelDir();
        WorkerConfig config = new WorkerConfig(dir, port, ExpertSelection.parse(experts));
        LOG.info("Effective configuration: {}", config);
        Telemetry telemetry = metrics.start(TelemetryConfig.WORKER);
        ExpertWorkerServer server = new ExpertWorkerServer(config, model.newKernels(), telemetry).start();
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().unstarted(() -> {
            try {
                server.shutdown();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                telemetry.close();
            }
        }));
        server.awaitLoaded();
        System.err.println("expertmesh worker serving experts " + experts + " of " + dir.getFileName()
                + " on port " + server.port());
        if (registerWith != null) {
            String self = advertise != null ? advertise : "127.0.0.1:" + server.port();
            Thread.ofPlatform().name("expertmesh-register").daemon().start(() -> RouterRegistration.register(
                    registerWith, self));
        }
        server.awaitTermination();
        return 0;
    }
}
