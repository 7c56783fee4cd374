package io.expertmesh.router.engine;

import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.kvcache.KvBlockStore;
import io.expertmesh.kvcache.NoopKvBlockStore;
import java.util.Objects;

/**
 * What an {@link Engine} is plugged into, beside its model and {@link EngineConfig} limits.
 *
 * @param store         the distributed KV tier ({@link NoopKvBlockStore}: none); it needs prefix caching, and with
 *                      that off it is not used
 * @param microBatching two micro-batches per step sharing a compute lock with the expert dispatch; null: one batch
 * @param stepObserver  watches each forward pass (telemetry)
 * @param backend       makes the forward-step runner once the paged KV cache is sized ({@link ForwardBackend#CPU},
 *                      or module cuda's device-resident pass on a GPU)
 */
public record EngineOptions(KvBlockStore store, Engine.MicroBatching microBatching, StepObserver stepObserver,
                            ForwardBackend.Factory backend) {
    /** No KV tier, one batch per step, no observer, the CPU. */
    public static final EngineOptions DEFAULT =
            new EngineOptions(new NoopKvBlockStore(), null, StepObserver.NONE, ForwardBackend.CPU);

    public EngineOptions {
        Objects.requireNonNull(store, "store");
        Objects.requireNonNull(stepObserver, "stepObserver");
        Objects.requireNonNull(backend, "backend");
    }

    public EngineOptions withStore(KvBlockStore s) {
        return new EngineOptions(s, microBatching, stepObserver, backend);
    }

    public EngineOptions withMicroBatching(Engine.MicroBatching m) {
        return new EngineOptions(store, m, stepObserver, backend);
    }

    public EngineOptions withStepObserver(StepObserver o) {
        return new EngineOptions(store, microBatching, o, backend);
    }

    public EngineOptions withBackend(ForwardBackend.Factory b) {
        return new EngineOptions(store, microBatching, stepObserver, b);
    }
}
