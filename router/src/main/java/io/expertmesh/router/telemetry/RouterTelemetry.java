package io.expertmesh.router.telemetry;

import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.engine.SequenceListener;
import io.expertmesh.router.engine.StepObserver;
import io.expertmesh.telemetry.Telemetry;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.router.experts.WorkerChannels;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.Tracer;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicBoolean;

/** The router's view of a process's {@link Telemetry}: request observation, step tracing and metrics. */
public final class RouterTelemetry implements AutoCloseable {
    private final Telemetry telemetry;
    private final Tracer tracer;
    private final RouterMetrics metrics;
    private final StepTracing steps;
    private final AtomicBoolean closed = new AtomicBoolean();

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

    /** The step tracer; {@link StepObserver#NONE} without telemetry, so the engine skips it entirely. */
    public StepObserver stepObserver() {
        return telemetry.enabled() ? steps : StepObserver.NONE;
    }

    /**
     * {@code channels} with tracing (a {@code dispatch layer L} CLIENT span per RunExperts call made under a
     * sampled step, the trace context in the metadata) and gRPC's client metrics added.
     */
    public WorkerChannels workerChannels(WorkerChannels channels) {
        return channels.alsoConfigure(b -> telemetry.configureChannel(b, RouterTelemetry::nameDispatchSpan));
    }

    private static void nameDispatchSpan(Span span, Object request) {
        if (request instanceof RunExpertsRequest r) {
            span.updateName("dispatch layer " + r.getLayer());
            span.setAttribute("expertmesh.layer", r.getLayer());
            span.setAttribute("expertmesh.tokens", r.getNumTokens());
            span.setAttribute("expertmesh.assignments", r.getExpertIdsCount());
        }
    }

    /** Reports this engine's queue, KV cache and prefix cache state from now on. */
    public void bind(Engine engine) {
        metrics.bind(engine);
    }

    /** Unregisters the state gauges (the {@link Telemetry} itself belongs to whoever made it). */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            metrics.close();
        }
    }
}
