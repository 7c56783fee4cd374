package io.expertmesh.router.engine;

import java.util.List;

/**
 * Watches the engine's forward passes, on the engine thread (telemetry opens a trace scope around them so that
 * work started on that thread, such as expert dispatch RPCs, joins a request's trace). Must not block. The
 * engine knows nothing of what an observer does; {@link #NONE} is the default.
 */
public interface StepObserver {
    /** Does nothing. */
    StepObserver NONE = (listeners, tokens) -> StepScope.NONE;

    /**
     * Called just before a step's forward pass.
     *
     * @param listeners the listeners of the sequences in the step, in the step's order
     * @param tokens    tokens in the step
     * @return a scope the engine closes right after the forward pass, on the same thread
     */
    StepScope beforeForward(List<SequenceListener> listeners, int tokens);

    /** What {@link #beforeForward} opened. */
    interface StepScope extends AutoCloseable {
        StepScope NONE = () -> { };

        @Override
        void close();
    }
}
