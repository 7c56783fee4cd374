package io.expertmesh.cli;

import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.telemetry.TelemetryConfig;
import picocli.CommandLine.Option;

/**
 * The telemetry flags of {@code serve} and {@code worker}. Everything else (exporters, endpoints, sampling,
 * resource attributes) comes from the standard {@code OTEL_*} environment variables.
 */
final class MetricsOptions {
    // Off by default: a second port per process is something to ask for. 9464 is the port OpenTelemetry's
    // Prometheus exporter uses by convention.
    @Option(names = "--metrics-port", paramLabel = "P",
            description = "Serve Prometheus metrics on http://HOST:P/metrics (off by default; 0 = any free port; "
                    + "OpenTelemetry's convention is 9464).")
    Integer metricsPort;

    @Option(names = "--metrics-host", paramLabel = "HOST",
            description = "Address the metrics endpoint binds (default 0.0.0.0).")
    String metricsHost = "0.0.0.0";

    TelemetryConfig config(String serviceName) {
        return new TelemetryConfig(serviceName, metricsHost, metricsPort == null ? TelemetryConfig.OFF : metricsPort);
    }

    Telemetry start(String serviceName) {
        return Telemetry.fromEnvironment(config(serviceName));
    }
}
