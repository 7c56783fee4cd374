package io.expertmesh.router.telemetry;

import io.expertmesh.router.engine.SequenceListener;
import io.expertmesh.router.engine.StepObserver;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanBuilder;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Scope;
import java.util.List;

/**
 * A {@code step} span around each forward pass that serves at least one sampled request, current on the engine
 * thread while the pass runs, so the per-layer expert dispatch started there (and, through gRPC metadata, the
 * workers' spans) joins the trace. A step batches many requests but a span has one parent: the first sampled
 * request in the step is the parent (its {@code prefill} or {@code decode} span), the other sampled ones are
 * linked. Steps with no sampled request open nothing, so unsampled traffic costs one scan of the step's
 * listeners.
 */
final class StepTracing implements StepObserver {
    /** Links per step span at most: a 64-sequence step should not carry 63 links. */
    static final int MAX_LINKS = 16;

    private final Tracer tracer;

    StepTracing(Tracer tracer) {
        this.tracer = tracer;
    }

    @Override
    public StepScope beforeForward(List<SequenceListener> listeners, int tokens) {
        TracedRequest first = null;
        int links = 0;
        SpanBuilder b = null;
        for (SequenceListener l : listeners) {
            if (l instanceof TracedRequest t && t.sampled()) {
                if (first == null) {
                    first = t;
                    b = tracer.spanBuilder("step").setParent(t.phaseContext())
                            .setAttribute("expertmesh.step.tokens", tokens)
                            .setAttribute("expertmesh.step.sequences", listeners.size());
                } else if (links++ < MAX_LINKS) {
                    b.addLink(Span.fromContext(t.phaseContext()).getSpanContext());
                }
            }
        }
        if (first == null) {
            return StepScope.NONE;
        }
        Span span = b.startSpan();
        Scope scope = first.phaseContext().with(span).makeCurrent();
        return () -> {
            scope.close();
            span.end();
        };
    }
}
