package io.expertmesh.core.model;

/**
 * Where a server's forward steps run: core's {@link Transformer} on the CPU kernels, or a pass that keeps
 * activations, weights and the paged KV cache in device memory (module cuda's {@code DeviceForward}). The engine
 * owns the paged KV cache's bookkeeping (which sequence holds which block) and a host copy of every block; a
 * device backend holds the same blocks in device memory under the same ids.
 */
public interface ForwardBackend extends AutoCloseable {

    /** A runner with its own working buffers, for one thread (a second micro-batch gets another). */
    Runner newRunner();

    /**
     * The host wrote its copy of {@code blockId} outside a step (a prefix imported from the distributed tier); a
     * device backend uploads it before the next step reads it. Any thread.
     */
    void hostWrote(int blockId);

    /**
     * A cache for one sequence outside an engine's paged cache (single-process generation), of at least
     * {@code capacity} positions; give it back with {@link #release}.
     */
    KvCache newCache(int capacity);

    /** Returns a cache from {@link #newCache} (a device backend's blocks go back to its pool). */
    void release(KvCache cache);

    /** One line for the start-up log: where steps run and what that holds. */
    String describe();

    @Override
    void close();

    /** Runs forward steps, as {@link Transformer#forward(ForwardBatch, float[])}. */
    @FunctionalInterface
    interface Runner {
        void forward(ForwardBatch batch, float[] logits);
    }

    /** The host copy of a paged cache's block: {@code blockSize × rowWidth} floats of one layer. */
    @FunctionalInterface
    interface HostBlocks {
        float[] rows(int blockId, int layer);
    }

    /** Builds the backend once the engine has sized its paged cache. */
    @FunctionalInterface
    interface Factory {
        ForwardBackend create(Transformer model, int numBlocks, int blockSize, HostBlocks hostBlocks);
    }

    /** Core's CPU forward pass: it reads and writes the host blocks directly. */
    Factory CPU = (model, numBlocks, blockSize, hostBlocks) -> new ForwardBackend() {
        @Override
        public Runner newRunner() {
            StepContext ctx = model.newStepContext();
            return (batch, logits) -> model.forward(batch, logits, ctx);
        }

        @Override
        public void hostWrote(int blockId) {
            // The CPU reads the host blocks themselves.
        }

        @Override
        public KvCache newCache(int capacity) {
            return model.newCache(capacity);
        }

        @Override
        public void release(KvCache cache) {
            // Garbage-collected.
        }

        @Override
        public String describe() {
            return "forward pass on the CPU kernels (" + model.kernels().getClass().getSimpleName() + ")";
        }

        @Override
        public void close() {
            // The model is the caller's.
        }
    };
}
