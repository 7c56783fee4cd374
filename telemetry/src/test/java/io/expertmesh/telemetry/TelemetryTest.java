package io.expertmesh.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.trace.Span;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import org.junit.jupiter.api.Test;

class TelemetryTest {

    static String scrape(int port) throws Exception {
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            return r.body();
        }
    }

    /** The value of the first sample of {@code name} (any labels) in a text exposition; NaN if absent. */
    static double value(String body, String name) {
        for (String line : body.split("\n")) {
            if (line.startsWith(name + "{") || line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return Double.NaN;
    }

    @Test
    void fromEnvironment_defaults_servePrometheusAndSampleNothing() throws Exception {
        try (Telemetry t = Telemetry.fromEnvironment(new TelemetryConfig("expertmesh-test", "127.0.0.1", 0))) {
            int port = t.metricsPort().orElseThrow();
            LongCounter c = t.meter().counterBuilder("expertmesh.test.things").setUnit("{thing}").build();
            c.add(3);
            String first = scrape(port);
            assertEquals(3.0, value(first, "expertmesh_test_things_total"), first);
            assertTrue(first.contains("service_name=\"expertmesh-test\""), first);
            c.add(4);
            assertEquals(7.0, value(scrape(port), "expertmesh_test_things_total"));

            // Traces exporter none (the default): nothing is sampled, so no span is even recorded.
            Span s = t.tracer().spanBuilder("x").startSpan();
            assertFalse(s.getSpanContext().isSampled());
            assertFalse(s.isRecording());
            s.end();
        }
    }

    @Test
    void fromEnvironment_otlpOverHttpAndGrpc_exportersBuild() {
        // Both OTLP protocols need a sender on the class path (a missing one fails at start-up, not here).
        for (String protocol : List.of("http/protobuf", "grpc")) {
            System.setProperty("otel.traces.exporter", "otlp");
            System.setProperty("otel.metrics.exporter", "otlp");
            System.setProperty("otel.exporter.otlp.protocol", protocol);
            System.setProperty("otel.exporter.otlp.endpoint", "http://127.0.0.1:9");
            try (Telemetry t = Telemetry.fromEnvironment(TelemetryConfig.withoutEndpoint("expertmesh-test"))) {
                // Not ended: nothing is exported to the unreachable endpoint, so closing does not wait on it.
                Span s = t.tracer().spanBuilder("x").startSpan();
                assertTrue(s.getSpanContext().isSampled(), protocol + ": an exporter is set, so spans are sampled");
            } finally {
                for (String k : List.of("otel.traces.exporter", "otel.metrics.exporter", "otel.exporter.otlp.protocol",
                        "otel.exporter.otlp.endpoint")) {
                    System.clearProperty(k);
                }
            }
        }
    }

    @Test
    void fromEnvironment_sdkDisabled_startsAndRecordsNothing() {
        System.setProperty("otel.sdk.disabled", "true");
        try (Telemetry t = Telemetry.fromEnvironment(TelemetryConfig.withoutEndpoint("expertmesh-test"))) {
            assertFalse(t.tracer().spanBuilder("x").startSpan().isRecording());
        } finally {
            System.clearProperty("otel.sdk.disabled");
        }
    }

    @Test
    void withoutEndpoint_hasNoMetricsPort() {
        try (Telemetry t = Telemetry.fromEnvironment(TelemetryConfig.withoutEndpoint("expertmesh-test"))) {
            assertTrue(t.metricsPort().isEmpty());
        }
        assertTrue(Telemetry.noop().metricsPort().isEmpty());
    }

    @Test
    void config_badPort_isRejected() {
        var e = assertThrows(IllegalArgumentException.class, () -> new TelemetryConfig("x", "0.0.0.0", 70000));
        assertTrue(e.getMessage().contains("70000"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new TelemetryConfig(" ", "0.0.0.0", 0));
    }

    @Test
    void endpoint_portTaken_failsClearly() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1,
                java.net.InetAddress.getByName("127.0.0.1"))) {
            var e = assertThrows(RuntimeException.class, () -> Telemetry.fromEnvironment(
                    new TelemetryConfig("x", "127.0.0.1", taken.getLocalPort())));
            assertTrue(e.getMessage().contains("cannot serve Prometheus metrics on 127.0.0.1:"
                    + taken.getLocalPort()), e.getMessage());
        }
    }
}
