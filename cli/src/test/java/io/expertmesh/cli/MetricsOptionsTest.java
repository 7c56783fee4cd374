package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.telemetry.TelemetryConfig;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code --metrics-port} / {@code --metrics-host} of serve and worker become the telemetry configuration. */
class MetricsOptionsTest {

    @Test
    void serve_noFlags_endpointOffAndRouterServiceName() {
        ServeCommand serve = new ServeCommand();
        new CommandLine(serve).parseArgs();
        TelemetryConfig c = serve.metrics.config(TelemetryConfig.ROUTER);
        assertEquals(TelemetryConfig.OFF, c.metricsPort());
        assertEquals("expertmesh-router", c.serviceName());
    }

    @Test
    void worker_metricsPortAndHost_areUsed() {
        WorkerCommand worker = new WorkerCommand();
        new CommandLine(worker).parseArgs("--metrics-port", "9464", "--metrics-host", "127.0.0.1");
        TelemetryConfig c = worker.metrics.config(TelemetryConfig.WORKER);
        assertEquals(9464, c.metricsPort());
        assertEquals("127.0.0.1", c.metricsHost());
        assertEquals("expertmesh-worker", c.serviceName());
    }

    @Test
    void serve_metricsPortOutOfRange_saysWhatIsWrong() {
        ServeCommand serve = new ServeCommand();
        new CommandLine(serve).parseArgs("--metrics-port", "70000");
        var e = assertThrows(IllegalArgumentException.class, () -> serve.metrics.config(TelemetryConfig.ROUTER));
        assertTrue(e.getMessage().contains("metrics port must be in [0, 65535]"), e.getMessage());
    }
}
