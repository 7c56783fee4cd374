package io.expertmesh.router.telemetry;

import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.engine.SequenceListener;
import io.expertmesh.router.engine.StepObserver;
import io.expertmesh.telemetry.Telemetry;
import io.opentelemetry.api.trace.Tracer;
import java.time.Instant;

/** The router's view of a process's {@link Telemetry}: request observation, step tracing and metrics. */
public final class RouterTelemetry implements AutoCloseable {
    private final Telemetry telemetry;
    private final Tracer tracer;
    private final RouterMetrics metrics;
    private final StepTracing steps;

    public RouterTelemetry(Telemetry telemetry) {
        this.telemetry = telemetry;
        this.tracer = telemetry.tracer();
        this.metrics = new RouterMetrics(telemetry.meter());
        this.steps = new StepTracing(tracer);
    }

    public static RouterTelemetry noop() {
        return new RouterTelemetry(Telemetry.noop());
    }

    public Telemetry telemetry() {
        return telemetry;
    }

    /**
     * Wraps a request's listener before it is submitted, on the thread that submits it (its current trace
     * context, the Generate call's span, becomes the parent of the request's spans).
     */
    public SequenceListener observe(EngineRequest request, SequenceListener listener) {
        Instant now = Instant.now();
        return new TracedRequest(request, listener, metrics, tracer,
                now.getEpochSecond() * 1_000_000_000L + now.getNano());
    }

    public StepObserver stepObserver() {
        return steps;
    }

    /** Reports this engine's queue, KV cache and prefix cache state from now on. */
    public void bind(Engine engine) {
        metrics.bind(engine);
    }

    /** Unregisters the state gauges (the {@link Telemetry} itself belongs to whoever made it). */
    @Override
    public void close() {
        metrics.close();
    }
}
