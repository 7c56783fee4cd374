package io.expertmesh.client;

import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.grpc.Context;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * The responses of one Generate call, read by blocking: {@link #hasNext()} waits for the next message. The last
 * message carries {@code finished}. Failures surface from {@code hasNext}/{@code next} as
 * {@link ExpertMeshException}. Read it to the end or {@link #close()} it (try-with-resources): an abandoned stream
 * keeps the generation running on the router until its deadline, if any.
 */
public final class GenerateStream implements Iterator<GenerateResponse>, AutoCloseable {
    private final Iterator<GenerateResponse> responses;
    private final Context.CancellableContext context;

    GenerateStream(Iterator<GenerateResponse> responses, Context.CancellableContext context) {
        this.responses = responses;
        this.context = context;
    }

    @Override
    public boolean hasNext() {
        try {
            boolean more = responses.hasNext();
            if (!more) {
                context.close();
            }
            return more;
        } catch (RuntimeException e) {
            context.close();
            throw ExpertMeshException.from(e);
        }
    }

    @Override
    public GenerateResponse next() {
        if (!hasNext()) {
            throw new NoSuchElementException("the Generate stream has ended");
        }
        try {
            return responses.next();
        } catch (RuntimeException e) {
            context.close();
            throw ExpertMeshException.from(e);
        }
    }

    /** Cancels the call if it is still running (the router stops the sequence); harmless after the end. */
    @Override
    public void close() {
        context.close();
    }
}
