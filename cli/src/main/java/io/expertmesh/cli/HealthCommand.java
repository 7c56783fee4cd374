package io.expertmesh.cli;

import io.expertmesh.cli.cluster.Readiness;
import io.expertmesh.client.ClientConfig;
import io.expertmesh.security.TlsCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code expertmesh health}: asks a router or worker for its {@code grpc.health.v1} status. For container
 * healthchecks and init containers (the image has no grpc_health_probe), and scripts that wait for a process.
 */
@Command(name = "health", mixinStandardHelpOptions = true,
        description = "Check a router's or worker's gRPC health; exit 0 when it is SERVING.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:SERVING", "1:not SERVING (or unreachable) within --wait-seconds", "2:bad arguments"})
final class HealthCommand implements Callable<Integer> {
    @Option(names = "--target", required = true, paramLabel = "HOST:PORT", description = "The process to ask.")
    String target;

    @Option(names = "--wait-seconds", paramLabel = "S",
            description = "Keep asking until it is SERVING, for at most S seconds (default 0: ask once).")
    long waitSeconds;

    // health is open to any caller, but a TLS server still needs a TLS connection (and, with mutual TLS, a
    // certificate of its client CA); a token, if any is given, is not needed and not sent
    @Mixin
    ClientSecurityOptions security = new ClientSecurityOptions();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        int colon = target.lastIndexOf(':');
        if (colon <= 0 || colon == target.length() - 1) {
            throw new IllegalArgumentException("--target must be HOST:PORT, got '" + target + "'");
        }
        String host = target.substring(0, colon);
        int port;
        try {
            port = Integer.parseInt(target.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--target port must be a number, got '" + target + "'");
        }
        if (port < 1 || port > 65535 || waitSeconds < 0) {
            throw new IllegalArgumentException("--target port must be in 1..65535 and --wait-seconds >= 0");
        }
        ClientConfig tls = security.applyTo(ClientConfig.defaults());
        ChannelCredentials credentials = tls.tls() == null ? InsecureChannelCredentials.create()
                : TlsCredentials.channel(tls.tls());
        try {
            Readiness.awaitGrpcServing("the process", host, port, credentials, Duration.ofSeconds(waitSeconds),
                    () -> false);
            spec.commandLine().getOut().println("SERVING");
            spec.commandLine().getOut().flush();
            return 0;
        } catch (Readiness.NotReadyException e) {
            spec.commandLine().getErr().println("expertmesh health: " + e.getMessage());
            spec.commandLine().getErr().flush();
            return 1;
        }
    }
}
