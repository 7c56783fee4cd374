package io.expertmesh.router.service;

import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.sample.FinishReason;
import io.expertmesh.core.sample.TokenLogprob;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.SequenceListener;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One Generate call's response stream, with flow control. The engine hands tokens over on its step thread and
 * must never wait for a client: tokens are buffered here and written only while the transport says it is ready
 * ({@code isReady}, {@code setOnReadyHandler}); tokens that pile up while a client is slow go out together in
 * one message. A client that stops reading is cut off once {@code maxBuffered} tokens wait, so one slow reader
 * costs a bounded amount of memory and never stalls the step loop.
 */
final class GenerateStream implements SequenceListener {
    private static final Logger LOG = LoggerFactory.getLogger(GenerateStream.class);

    private final ServerCallStreamObserver<GenerateResponse> observer;
    private final String requestId;
    private final boolean logprobs;
    private final int maxBuffered;
    private final List<GeneratedToken> pending = new ArrayList<>();
    private Finished finished;
    /**
     * Set when the request failed: the call ends with this status (after the tokens already made), never as an
     * OK stream that merely stops. UNAVAILABLE when no expert worker could serve, else INTERNAL naming the cause.
     */
    private Status failure;
    private boolean closed;
    private volatile Engine.Handle handle;

    GenerateStream(ServerCallStreamObserver<GenerateResponse> observer, String requestId, boolean logprobs,
                   int maxBuffered) {
        this.observer = observer;
        this.requestId = requestId;
        this.logprobs = logprobs;
        this.maxBuffered = maxBuffered;
        observer.setOnReadyHandler(this::drain);
        // Client cancel and deadline both arrive here; the engine frees the sequence on its next step.
        observer.setOnCancelHandler(this::cancelEngine);
    }

    void attach(Engine.Handle h) {
        this.handle = h;
        if (observer.isCancelled()) {
            h.cancel();
        }
    }

    private void cancelEngine() {
        Engine.Handle h = handle;
        if (h != null) {
            h.cancel();
        }
    }

    @Override
    public void onToken(TokenEvent e) {
        GeneratedToken.Builder t = GeneratedToken.newBuilder().setIndex(e.index()).setTokenId(e.tokenId())
                .setText(e.text());
        if (logprobs && !Float.isNaN(e.logprob())) {
            t.setLogprob(e.logprob());
        }
        for (TokenLogprob lp : e.topLogprobs()) {
            t.addTopLogprobs(io.expertmesh.proto.inference.v1.TokenLogprob.newBuilder().setTokenId(lp.tokenId())
                    .setLogprob(lp.logprob()));
        }
        boolean overflow = false;
        synchronized (this) {
            if (closed) {
                return;
            }
            pending.add(t.build());
            if (pending.size() > maxBuffered) {
                overflow = true;
                // Under the lock: gRPC stream observers must not be called from two threads at once.
                closed = true;
                LOG.warn("Request {}: client is not reading ({} tokens buffered); cancelling it", requestId,
                        maxBuffered);
                try {
                    observer.onError(Status.RESOURCE_EXHAUSTED.withDescription("the client did not read its "
                            + "stream: " + maxBuffered + " tokens were waiting").asRuntimeException());
                } catch (RuntimeException ignored) {
                    // The call may already be gone.
                }
            }
        }
        if (overflow) {
            cancelEngine();
            return;
        }
        drain();
    }

    @Override
    public void onFinished(Completion c) {
        synchronized (this) {
            if (closed) {
                return;
            }
            finished = ProtoMapping.finished(c);
            if (c.unavailable()) {
                failure = Status.UNAVAILABLE.withDescription(c.error());
            } else if (c.reason() == FinishReason.ERROR) {
                failure = Status.INTERNAL.withDescription(c.error() == null ? "the request failed in the server"
                        : c.error());
            }
        }
        drain();
    }

    /** Writes what the transport will take now; on the step thread or gRPC's onReady thread. */
    private synchronized void drain() {
        if (closed || observer.isCancelled()) {
            return;
        }
        while (observer.isReady() && (!pending.isEmpty() || finished != null)) {
            if (failure != null && pending.isEmpty()) {
                closed = true;
                observer.onError(failure.asRuntimeException());
                return;
            }
            GenerateResponse.Builder r = GenerateResponse.newBuilder().setRequestId(requestId).addAllTokens(pending);
            pending.clear();
            if (finished != null && failure == null) {
                r.setFinished(finished);
            }
            try {
                observer.onNext(r.build());
                if (finished != null && failure == null) {
                    closed = true;
                    observer.onCompleted();
                    return;
                }
            } catch (RuntimeException e) {
                // Cancelled between the check and the write: the cancel handler stops the engine side.
                closed = true;
                return;
            }
        }
    }
}
