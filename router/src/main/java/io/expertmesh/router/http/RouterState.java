package io.expertmesh.router.http;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.router.engine.Engine;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** What the HTTP API needs to know of its router, read at each request (the model loads in the background). */
public interface RouterState {

    /** The served model and its engine; null while the model loads. */
    Served served();

    /** Whether the router is draining: no new requests. */
    boolean draining();

    /** Whether it serves: loaded, not draining, every routed expert on a live worker (what gRPC health says). */
    boolean serving();

    /** A loaded model and the engine that runs it. */
    record Served(LoadedModel model, Engine engine) {
        /** The model's id in the API: its directory's name, as GetModelInfo reports it. */
        String modelId() {
            return model.dir().getFileName().toString();
        }
    }

    /**
     * A state read from the router's fields. {@code engine} is published after {@code model}, so a non-null
     * engine implies a model.
     */
    static RouterState of(Supplier<LoadedModel> model, Supplier<Engine> engine, BooleanSupplier draining,
                          BooleanSupplier serving) {
        return new RouterState() {
            @Override
            public Served served() {
                Engine e = engine.get();
                return e == null ? null : new Served(model.get(), e);
            }

            @Override
            public boolean draining() {
                return draining.getAsBoolean();
            }

            @Override
            public boolean serving() {
                return serving.getAsBoolean();
            }
        };
    }
}
