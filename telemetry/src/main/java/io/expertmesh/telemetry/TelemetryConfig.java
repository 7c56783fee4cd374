package io.expertmesh.telemetry;

import java.util.Objects;

/**
 * What a process's telemetry needs besides the standard {@code OTEL_*} settings.
 *
 * @param serviceName  {@code service.name} when {@code OTEL_SERVICE_NAME} / {@code otel.service.name} is unset
 * @param metricsHost  address the Prometheus endpoint binds
 * @param metricsPort  Prometheus endpoint port: {@link #OFF} for none, 0 for any free port
 */
public record TelemetryConfig(String serviceName, String metricsHost, int metricsPort) {
    /** No Prometheus endpoint. */
    public static final int OFF = -1;
    public static final String ROUTER = "expertmesh-router";
    public static final String WORKER = "expertmesh-worker";

    public TelemetryConfig {
        Objects.requireNonNull(serviceName, "serviceName");
        Objects.requireNonNull(metricsHost, "metricsHost");
        if (serviceName.isBlank()) {
            throw new IllegalArgumentException("service name must not be blank");
        }
        if (metricsPort < OFF || metricsPort > 65535) {
            throw new IllegalArgumentException("metrics port must be in [0, 65535] (or off), got " + metricsPort);
        }
    }

    /** No Prometheus endpoint, bind address 0.0.0.0 if one is turned on later. */
    public static TelemetryConfig withoutEndpoint(String serviceName) {
        return new TelemetryConfig(serviceName, "0.0.0.0", OFF);
    }

    public boolean endpointEnabled() {
        return metricsPort != OFF;
    }
}
