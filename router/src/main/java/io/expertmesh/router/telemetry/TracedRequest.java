package io.expertmesh.router.telemetry;

import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.sample.FinishReason;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.engine.SequenceListener;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import java.util.concurrent.TimeUnit;

/**
 * One request seen by telemetry: wraps the listener the service gave the engine. Its spans are children of the
 * context current when the request was submitted (the Generate call's server span): {@code queue} (submit to
 * first scheduled step, recorded when it ends), then {@code prefill} (to the first token) and {@code decode}
 * (to the end), which are open while they run so that a step's work can join them. It records the request's
 * latencies and token counts. Every method but the constructor runs on the engine thread.
 */
final class TracedRequest implements SequenceListener {
    private final SequenceListener delegate;
    private final RouterMetrics metrics;
    private final Tracer tracer;
    private final Context parent;
    private final Span requestSpan;
    private final int promptTokens;
    private final long submitNanos = System.nanoTime();
    private final long submitEpochNanos;
    private Span phase;
    private Context phaseContext;
    private boolean scheduled;
    private long lastTokenNanos;

    TracedRequest(EngineRequest request, SequenceListener delegate, RouterMetrics metrics, Tracer tracer,
                  long epochNanos) {
        this.delegate = delegate;
        this.metrics = metrics;
        this.tracer = tracer;
        this.parent = Context.current();
        this.requestSpan = Span.fromContext(parent);
        this.promptTokens = request.prompt().length;
        this.submitEpochNanos = epochNanos;
        if (requestSpan.isRecording()) {
            requestSpan.setAttribute("expertmesh.request_id", request.requestId());
            requestSpan.setAttribute("expertmesh.prompt_tokens", promptTokens);
            requestSpan.setAttribute("expertmesh.max_tokens", request.params().maxTokens());
        }
    }

    /** The open phase span's context ({@code prefill} or {@code decode}), or null when none is open. */
    Context phaseContext() {
        return phaseContext;
    }

    /** Whether a step's work should be traced under this request. */
    boolean sampled() {
        return phase != null && phase.getSpanContext().isSampled();
    }

    @Override
    public void onScheduled() {
        scheduled = true;
        long now = System.nanoTime();
        metrics.queueTime.record(seconds(now - submitNanos));
        endQueueSpan();
        openPhase("prefill");
        delegate.onScheduled();
    }

    @Override
    public void onToken(TokenEvent token) {
        long now = System.nanoTime();
        if (lastTokenNanos == 0) {
            metrics.ttft.record(seconds(now - submitNanos));
            metrics.promptTokens.add(promptTokens);
            closePhase();
            openPhase("decode");
        } else {
            metrics.itl.record(seconds(now - lastTokenNanos));
        }
        lastTokenNanos = now;
        metrics.generationTokens.add(1);
        delegate.onToken(token);
    }

    @Override
    public void onFinished(Completion c) {
        metrics.e2e.record(seconds(System.nanoTime() - submitNanos));
        metrics.cachedPromptTokens.add(c.cachedPromptTokens());
        metrics.finished(c.reason().wireName());
        if (!scheduled) {
            endQueueSpan();
        }
        if (phase != null && c.reason() == FinishReason.ERROR) {
            phase.setStatus(StatusCode.ERROR, c.error() == null ? "error" : c.error());
        }
        closePhase();
        if (requestSpan.isRecording()) {
            requestSpan.setAttribute("expertmesh.completion_tokens", c.completionTokens());
            requestSpan.setAttribute("expertmesh.cached_prompt_tokens", c.cachedPromptTokens());
            requestSpan.setAttribute("expertmesh.finish_reason", c.reason().wireName());
            if (c.reason() == FinishReason.ERROR) {
                requestSpan.setStatus(StatusCode.ERROR, c.error() == null ? "error" : c.error());
            }
        }
        delegate.onFinished(c);
    }

    /** The queue span is recorded after the fact: nothing runs under it, so nothing needs its context open. */
    private void endQueueSpan() {
        if (requestSpan.getSpanContext().isSampled()) {
            tracer.spanBuilder("queue").setParent(parent)
                    .setStartTimestamp(submitEpochNanos, TimeUnit.NANOSECONDS).startSpan().end();
        }
    }

    private void openPhase(String name) {
        if (!requestSpan.getSpanContext().isValid()) {
            return; // not traced (no Generate span): no orphan phase spans
        }
        phase = tracer.spanBuilder(name).setParent(parent).startSpan();
        phaseContext = parent.with(phase);
    }

    private void closePhase() {
        if (phase != null) {
            phase.end();
            phase = null;
            phaseContext = null;
        }
    }

    private static double seconds(long nanos) {
        return nanos / 1e9;
    }
}
