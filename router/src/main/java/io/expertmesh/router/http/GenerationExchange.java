package io.expertmesh.router.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineRejection;
import io.expertmesh.router.engine.EngineRequest;
import io.expertmesh.router.engine.SequenceListener;
import io.expertmesh.router.http.OpenAiRequest.Endpoint;
import io.expertmesh.router.service.GenerateRequests;
import io.expertmesh.router.telemetry.RouterTelemetry;
import io.expertmesh.core.sample.FinishReason;
import io.grpc.StatusRuntimeException;
import io.vertx.core.Context;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One {@code POST /v1/completions} or {@code /v1/chat/completions}: reads the body, turns it into the gRPC
 * path's request (same validation), submits it to the shared {@link Engine} and writes the answer, streamed as
 * server-sent events or whole.
 *
 * <p>Threads: the event loop reads the body and does every write; parsing, tokenizing and the engine's submit
 * (which may ask the distributed KV tier) run on a virtual thread, never on the event loop; the engine hands
 * tokens over on its step thread, which only buffers them and schedules a write on the event loop, so a slow
 * client never stalls a step. As with gRPC, a streaming client that leaves {@code maxBuffered} tokens unread is
 * cut off, and a client whose connection closes has its sequence cancelled at once (the engine frees it on its
 * next step).
 */
final class GenerationExchange implements SequenceListener {
    private static final Logger LOG = LoggerFactory.getLogger(GenerationExchange.class);
    private static final Buffer DONE = Buffer.buffer("data: [DONE]\n\n");

    private final Endpoint endpoint;
    private final HttpServerResponse response;
    private final Context context;
    private final RouterState state;
    private final RouterTelemetry telemetry;
    private final HttpTelemetry.Call call;
    private final ObjectMapper json;
    private final int maxBuffered;
    private final long created = Instant.now().getEpochSecond();
    private final String requestId = UUID.randomUUID().toString().replace("-", "");

    // Handed from the engine thread to the event loop, under this object's lock.
    private final List<TokenEvent> pending = new ArrayList<>();
    private Completion finished;
    private boolean writeScheduled;
    /** Nothing more goes to the client: the answer is complete, or the client was cut off. */
    private boolean closed;

    // Set once by the submitting thread, before the event loop's begin().
    private OpenAiRequest request;
    private OpenAiResponses answer;

    // Event loop only.
    private boolean started;
    private final List<TokenEvent> all = new ArrayList<>();

    private volatile Engine.Handle handle;
    private volatile boolean clientGone;

    GenerationExchange(Endpoint endpoint, HttpServerResponse response, Context context, RouterState state,
                       RouterTelemetry telemetry, HttpTelemetry.Call call, ObjectMapper json, int maxBuffered) {
        this.endpoint = endpoint;
        this.response = response;
        this.context = context;
        this.state = state;
        this.telemetry = telemetry;
        this.call = call;
        this.json = json;
        this.maxBuffered = maxBuffered;
    }

    /** The body has been read (event loop); the rest happens on {@code executor}. */
    void submitLater(Buffer body, Executor executor) {
        executor.execute(() -> submit(body));
    }

    /** The connection closed before the answer was complete: stop the sequence. Event loop. */
    void clientGone() {
        clientGone = true;
        Engine.Handle h = handle;
        if (h != null) {
            h.cancel();
        }
    }

    private void submit(Buffer body) {
        try {
            RouterState.Served served = state.served();
            if (served == null) {
                throw OpenAiError.unavailable("the model is still loading; retry shortly", "loading");
            }
            if (state.draining()) {
                throw OpenAiError.unavailable("the server is draining; retry elsewhere", "draining");
            }
            JsonNode tree;
            try {
                tree = json.readTree(body.getBytes());
            } catch (JsonProcessingException e) {
                throw OpenAiError.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
            } catch (java.io.IOException e) {
                throw OpenAiError.invalid(null, "the request body cannot be read: " + e.getMessage());
            }
            request = OpenAiRequestParser.parse(endpoint, tree, served.modelId(), requestId);
            EngineRequest engineRequest = map(served, request.generate());
            answer = new OpenAiResponses(request, requestId, created, served.modelId(),
                    served.model().tokenizer().orElse(null));
            if (clientGone) {
                return;
            }
            Engine.Handle h;
            try (io.opentelemetry.context.Scope ignored = call.context().makeCurrent()) {
                // observed like a Generate call: request spans under this HTTP span, TTFT and token metrics
                h = served.engine().submit(engineRequest, telemetry.observe(engineRequest, this));
            } catch (EngineRejection e) {
                throw OpenAiErrors.fromRejection(e, request);
            }
            handle = h;
            if (clientGone) {
                h.cancel();
            }
            context.runOnContext(v -> begin());
        } catch (OpenAiError e) {
            context.runOnContext(v -> HttpResponses.error(response, e));
        } catch (RuntimeException e) {
            LOG.error("HTTP {} request {} failed", endpoint.path, requestId, e);
            context.runOnContext(v -> HttpResponses.error(response, new OpenAiError(500, "server_error",
                    "internal error: " + e, null, null)));
        }
    }

    private EngineRequest map(RouterState.Served served, GenerateRequest generate) {
        try {
            return GenerateRequests.map(served.model(), generate);
        } catch (StatusRuntimeException e) {
            throw OpenAiErrors.fromStatus(e, request);
        }
    }

    /** Event loop: the request is in the engine; a stream sends its headers now. */
    private void begin() {
        if (response.closed()) {
            return;
        }
        if (request.stream()) {
            response.setStatusCode(200).setChunked(true)
                    .putHeader("Content-Type", "text/event-stream; charset=utf-8")
                    .putHeader("Cache-Control", "no-cache")
                    // proxies such as nginx would otherwise hold the events back
                    .putHeader("X-Accel-Buffering", "no");
            // sent now, not with the first token: the client learns at once that the request was taken (it
            // may wait in the queue a while), and a refusal (429, 503) stays distinguishable from a slow start
            response.writeHead();
            if (endpoint == Endpoint.CHAT) {
                event(answer.roleChunk());
            }
        }
        started = true;
        write();
    }

    @Override
    public void onToken(TokenEvent token) {
        boolean overflow = false;
        synchronized (this) {
            if (closed) {
                return;
            }
            pending.add(token);
            if (request.stream() && pending.size() > maxBuffered) {
                overflow = true;
                closed = true;
                pending.clear();
            }
        }
        if (overflow) {
            LOG.warn("HTTP request {}: client is not reading ({} tokens buffered); cancelling it", requestId,
                    maxBuffered);
            Engine.Handle h = handle;
            if (h != null) {
                h.cancel();
            }
            context.runOnContext(v -> response.reset());
            return;
        }
        scheduleWrite();
    }

    @Override
    public void onFinished(Completion completion) {
        synchronized (this) {
            if (closed) {
                return;
            }
            finished = completion;
        }
        scheduleWrite();
    }

    private void scheduleWrite() {
        synchronized (this) {
            if (writeScheduled) {
                return;
            }
            writeScheduled = true;
        }
        context.runOnContext(v -> write());
    }

    /** Event loop: sends what the engine produced, as far as the connection takes it. */
    private void write() {
        List<TokenEvent> tokens;
        Completion done;
        synchronized (this) {
            writeScheduled = false;
            if (!started || response.ended()) {
                return;
            }
            if (response.closed()) {
                closed = true;
                return;
            }
            if (request.stream() && response.writeQueueFull()) {
                // the client reads slower than we write: keep the tokens (up to maxBuffered) until it catches up
                response.drainHandler(v -> write());
                return;
            }
            tokens = new ArrayList<>(pending);
            pending.clear();
            done = finished;
            if (done != null) {
                closed = true;
            }
        }
        if (request.stream()) {
            writeEvents(tokens, done);
        } else {
            all.addAll(tokens);
            if (done != null) {
                writeWhole(done);
            }
        }
    }

    private void writeEvents(List<TokenEvent> tokens, Completion done) {
        if (!tokens.isEmpty()) {
            ObjectNode chunk = answer.tokenChunk(tokens);
            if (chunk != null) {
                event(chunk);
            }
        }
        if (done == null) {
            return;
        }
        if (done.reason() == FinishReason.ERROR) {
            // mid-stream the status line is gone: the error goes as an event, as OpenAI and vLLM send it
            event(failure(done).toJson());
        } else {
            event(answer.finishChunk(done));
            if (request.includeUsage()) {
                event(answer.usageChunk(done));
            }
        }
        response.write(DONE);
        response.end();
    }

    private void writeWhole(Completion done) {
        if (done.reason() == FinishReason.ERROR) {
            HttpResponses.error(response, failure(done));
            return;
        }
        HttpResponses.json(response, 200, answer.complete(all, done));
    }

    private static OpenAiError failure(Completion done) {
        return done.unavailable() ? OpenAiError.unavailable(done.error(), "experts_unavailable")
                : new OpenAiError(500, "server_error", "generation failed: " + done.error(), null, null);
    }

    private void event(ObjectNode chunk) {
        try {
            response.write(Buffer.buffer(6 + 256).appendString("data: ").appendBytes(json.writeValueAsBytes(chunk))
                    .appendString("\n\n"));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a response chunk did not serialize", e); // our own tree: cannot happen
        }
    }
}
