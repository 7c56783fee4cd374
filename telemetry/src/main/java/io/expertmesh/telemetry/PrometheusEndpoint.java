package io.expertmesh.telemetry;

import io.opentelemetry.exporter.prometheus.PrometheusMetricReader;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * A Prometheus scrape endpoint ({@code GET /metrics}) over one meter provider. The metric reader is registered
 * with the provider first; {@link #start} then serves what it collects. Built from the Prometheus client's own
 * HTTP server rather than {@code PrometheusHttpServer} so that port 0 works and the bound port is known.
 */
final class PrometheusEndpoint implements AutoCloseable {
    private final PrometheusMetricReader reader = PrometheusMetricReader.builder().build();
    private HTTPServer server;

    /** The reader to register with the meter provider before {@link #start}. */
    PrometheusMetricReader reader() {
        return reader;
    }

    void start(String host, int port) {
        PrometheusRegistry registry = new PrometheusRegistry();
        registry.register(reader);
        try {
            server = HTTPServer.builder().hostname(host).port(port).registry(registry).buildAndStart();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serve Prometheus metrics on " + host + ":" + port + ": "
                    + e.getMessage(), e);
        }
    }

    int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        if (server != null) {
            server.close();
        }
    }
}
