package io.expertmesh.cli;

import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.security.AllowedClients;
import io.expertmesh.security.BearerToken;
import io.expertmesh.security.BearerTokenCredentials;
import io.expertmesh.security.MethodScopes;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.expertmesh.security.ServerSecurity;
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

    @Mixin
    ListenOptions listen = new ListenOptions();

    @Option(names = "--experts", paramLabel = "SPEC",
            description = "Routed experts to hold in every MoE layer: all (default), none (a router assigns them), ids and ranges such as 0-7 "
                    + "or 0-3,9, or shard:I/N (every expert e with e % N == I).")
    String experts = "all";

    @Option(names = "--register-with", paramLabel = "HOST:PORT",
            description = "A router to join at start (it gives this worker experts by a rebalance).")
    String registerWith;

    @Option(names = "--advertise", paramLabel = "HOST:PORT",
            description = "Address the router reaches this worker at (default --host:<port>, or 127.0.0.1:<port> "
                    + "when --host is every interface).")
    String advertise;

    @Option(names = "--register-tls-ca", paramLabel = "FILE",
            description = "PEM CA certificate(s) of the router's TLS certificate, for --register-with.")
    Path registerTlsCa;

    @Option(names = "--register-token-file", paramLabel = "FILE",
            description = "Bearer token (admin scope) for --register-with, when the router checks tokens.")
    Path registerTokenFile;

    @Mixin
    ServerTlsOptions tls = new ServerTlsOptions();

    // Default: with mutual TLS, any certificate the client CA signed may call. That is right when the CA signs
    // only routers; with one CA for the whole cluster, name the routers here so a worker's or a user's
    // certificate of the same CA gets PERMISSION_DENIED.
    @Option(names = "--allowed-clients", paramLabel = "NAME,...",
            description = "With --tls-client-ca: only client certificates with one of these names as CN or "
                    + "subject alternative name may call ExpertService (default: any the CA signed).")
    String allowedClients;

    @Override
    public Integer call() throws Exception {
        Path dir = model.resolveModelDir();
        WorkerConfig config = new WorkerConfig(dir, port, ExpertSelection.parse(experts));
        if (allowedClients != null && tls.clientCa == null) {
            throw new IllegalArgumentException("--allowed-clients needs mutual TLS (--tls-client-ca)");
        }
        if ((registerTlsCa != null || registerTokenFile != null) && registerWith == null) {
            throw new IllegalArgumentException("--register-tls-ca and --register-token-file go with --register-with");
        }
        // read before anything starts, so a bad file is a usage error and not a failure in the background
        ChannelCredentials toRouter = registerTlsCa == null ? InsecureChannelCredentials.create()
                : TlsCredentials.channel(TlsFiles.client(registerTlsCa));
        CallCredentials registerToken = registerTokenFile == null ? null
                : new BearerTokenCredentials(BearerToken.fromFile(registerTokenFile));
        ServerSecurity security = new ServerSecurity(tls.files(), null, AllowedClients.parse(allowedClients));
        ExpertRunner.Factory runners = model.expertRunners();  // --device: a missing GPU fails before anything starts
        LOG.info("Effective configuration: {}", config);
        Telemetry telemetry = metrics.start(TelemetryConfig.WORKER);
        ExpertWorkerServer server = new ExpertWorkerServer(config, model.newCpuKernels(),
                listen.serverBuilder("Expert worker", port, security, ExpertWorkerServer::transport),
                telemetry, security.interceptors(MethodScopes.builder().build()))
                .expertRunners(runners).start();
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
        System.out.println("expertmesh worker serving experts " + experts + " of " + dir.getFileName()
                + " on port " + server.port());
        System.out.flush();
        if (registerWith != null) {
            String self = advertise != null ? advertise
                    : (listen.isWildcard() ? "127.0.0.1" : listen.host.strip()) + ":" + server.port();
            Thread.ofPlatform().name("expertmesh-register").daemon().start(() -> RouterRegistration.register(
                    registerWith, self, toRouter, registerToken));
        }
        server.awaitTermination();
        return 0;
    }
}
