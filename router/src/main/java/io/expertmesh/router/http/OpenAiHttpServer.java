package io.expertmesh.router.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.router.http.OpenAiRequest.Endpoint;
import io.expertmesh.router.telemetry.RouterTelemetry;
import io.expertmesh.security.MethodScopes;
import io.expertmesh.security.TlsFiles;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.file.FileSystemOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import java.io.IOException;
import java.time.Instant;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The router's OpenAI-compatible HTTP API: {@code POST /v1/completions}, {@code POST /v1/chat/completions}
 * (streamed as server-sent events ending in {@code data: [DONE]}, or whole), {@code GET /v1/models} and
 * {@code GET /health}. Requests go to the same engine as gRPC ones (same batches, prefix cache and expert
 * workers), after the same validation (see {@link GenerationExchange}), under the same tokens and TLS.
 *
 * <p>Why Vert.x (core only, on Netty): a streamed generation needs two things from the server. Writes must not
 * block the engine's step thread, and Vert.x's response is a non-blocking write stream with back-pressure
 * ({@code writeQueueFull}, {@code drainHandler}), the HTTP twin of gRPC's {@code isReady}/{@code onReady} that
 * the gRPC path's flow control is built on. And a client that goes away must be noticed at once, even while its
 * request waits in the queue and nothing is written: Netty's event loop reads every connection all the time, so
 * the response's {@code closeHandler} fires as soon as the peer closes, and the sequence is cancelled within one
 * engine step. Thread-per-request servers (Helidon SE's virtual threads, Jetty's blocking handlers, the JDK's
 * HttpServer) learn of a gone client only when a write fails, which may be several tokens later or, for a
 * queued request, never before it runs. Vert.x's core is a small, actively released Eclipse project; its Netty is
 * separate from gRPC's shaded copy, so the two never conflict.
 */
public final class OpenAiHttpServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OpenAiHttpServer.class);
    /** Largest request body: the gRPC server's inbound limit (long prompts as token ids, with room to spare). */
    static final int MAX_BODY_BYTES = 16 << 20;
    // The gRPC methods whose access rules each route follows.
    private static final String GENERATE = InferenceServiceGrpc.getGenerateMethod().getFullMethodName();
    private static final String MODEL_INFO = InferenceServiceGrpc.getGetModelInfoMethod().getFullMethodName();
    private static final String HEALTH = MethodScopes.HEALTH + "/Check";

    private final OpenAiHttpConfig config;
    private final RouterState state;
    private final RouterTelemetry telemetry;
    private final HttpTelemetry httpTelemetry;
    private final HttpAuth auth;
    private final ObjectMapper json = new ObjectMapper();
    private final long started = Instant.now().getEpochSecond();
    // Parsing, tokenizing and submitting may block (chat templates, the distributed KV lookup): never on the
    // event loop, and a virtual thread per request costs next to nothing.
    private final ExecutorService submitters =
            Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("expertmesh-http-", 0).factory());
    private final Vertx vertx;
    private final HttpServer server;

    private OpenAiHttpServer(OpenAiHttpConfig config, RouterState state, RouterTelemetry telemetry) {
        this.config = config;
        this.state = state;
        this.telemetry = telemetry;
        this.httpTelemetry = new HttpTelemetry(telemetry.telemetry());
        this.auth = new HttpAuth(config.security(), config.scopes());
        // Two event loops carry every connection (they only move bytes); no file cache: we serve no files.
        this.vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(2).setWorkerPoolSize(1)
                .setInternalBlockingPoolSize(1).setUseDaemonThread(true)
                .setFileSystemOptions(new FileSystemOptions().setFileCachingEnabled(false)
                        .setClassPathResolvingEnabled(false)));
        this.server = vertx.createHttpServer(options(config)).requestHandler(this::handle);
    }

    /**
     * Listens on {@code config.port()} and answers from {@code state}; requests before the model is loaded get
     * 503. {@code telemetry} is the router's (requests are measured and traced like gRPC ones).
     */
    public static OpenAiHttpServer start(OpenAiHttpConfig config, RouterState state, RouterTelemetry telemetry)
            throws IOException {
        OpenAiHttpServer s = new OpenAiHttpServer(config, state, telemetry);
        try {
            s.server.listen().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            s.close();
            throw new IOException("the HTTP API cannot listen on port " + config.port() + ": "
                    + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException | TimeoutException e) {
            s.close();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw new IOException("the HTTP API did not start listening on port " + config.port(), e);
        }
        LOG.info("OpenAI-compatible HTTP API listening on port {} ({})", s.port(),
                config.security().tls() == null ? "plaintext" : "TLS");
        return s;
    }

    private static HttpServerOptions options(OpenAiHttpConfig config) {
        // HTTP/1.1 (what curl and the OpenAI clients speak for SSE); the connection is the stream.
        // curl sends "Expect: 100-continue" before bodies over 1 KiB and waits a second for the go-ahead.
        HttpServerOptions o = new HttpServerOptions().setPort(config.port()).setHost(config.host())
                .setHttp2ClearTextEnabled(false).setDecompressionSupported(false)
                .setHandle100ContinueAutomatically(true);
        TlsFiles tls = config.security().tls();
        if (tls != null) {
            // The gRPC server has read and checked these files already (key matches certificate, dates).
            o.setSsl(true).setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.certChain().toString())
                    .setKeyPath(tls.privateKey().toString()));
            if (tls.trustRoots() != null) {
                o.setTrustOptions(new PemTrustOptions().addCertPath(tls.trustRoots().toString()));
                o.setClientAuth(tls.requireClientAuth() ? ClientAuth.REQUIRED : ClientAuth.REQUEST);
            }
        }
        return o;
    }

    /** The port it listens on (the one chosen when configured with 0). */
    public int port() {
        return server.actualPort();
    }

    private void handle(HttpServerRequest req) {
        String path = req.path();
        Endpoint endpoint = path.equals(Endpoint.CHAT.path) ? Endpoint.CHAT
                : path.equals(Endpoint.COMPLETIONS.path) ? Endpoint.COMPLETIONS : null;
        String route = endpoint != null || path.equals("/health") || path.equals("/v1/models") ? path
                : path.startsWith("/v1/models/") ? "/v1/models/{model}" : "other";
        HttpTelemetry.Call call = httpTelemetry.start(req, route);
        HttpServerResponse response = req.response();
        response.endHandler(v -> call.end(response.getStatusCode(), false));
        if (endpoint != null) {
            generation(req, endpoint, call);
            return;
        }
        response.closeHandler(v -> call.end(response.getStatusCode(), true));
        switch (route) {
            case "/health" -> {
                if (allowed(req, HttpMethod.GET, HEALTH)) {
                    health(response);
                }
            }
            case "/v1/models", "/v1/models/{model}" -> {
                if (allowed(req, HttpMethod.GET, MODEL_INFO)) {
                    models(response, route.equals("/v1/models") ? null
                            : path.substring("/v1/models/".length()));
                }
            }
            default -> HttpResponses.error(response, new OpenAiError(404, OpenAiError.INVALID_REQUEST,
                    "no such endpoint: " + req.method() + " " + path + " (this server has POST /v1/completions, "
                            + "POST /v1/chat/completions, GET /v1/models, GET /health)", null, "not_found"));
        }
    }

    /** Method and credentials; answers the refusal itself and returns false when there is one. */
    private boolean allowed(HttpServerRequest req, HttpMethod method, String grpcMethod) {
        if (!req.method().equals(method)) {
            req.response().putHeader("Allow", method.name());
            HttpResponses.errorAndClose(req.response(), new OpenAiError(405, OpenAiError.INVALID_REQUEST,
                    req.path() + " takes " + method.name() + ", not " + req.method(), null, "method_not_allowed"));
            return false;
        }
        OpenAiError refused = auth.refusal(req, grpcMethod);
        if (refused != null) {
            HttpResponses.errorAndClose(req.response(), refused);
            return false;
        }
        return true;
    }

    private void generation(HttpServerRequest req, Endpoint endpoint, HttpTelemetry.Call call) {
        HttpServerResponse response = req.response();
        GenerationExchange exchange = new GenerationExchange(endpoint, response, Vertx.currentContext(), state,
                telemetry, call, json, config.maxBufferedTokens());
        response.closeHandler(v -> {
            call.end(response.getStatusCode(), true);
            exchange.clientGone();
        });
        if (!allowed(req, HttpMethod.POST, GENERATE)) {
            return;
        }
        String length = req.getHeader("Content-Length");
        if (length != null && length.length() < 12 && length.chars().allMatch(Character::isDigit)
                && Long.parseLong(length) > MAX_BODY_BYTES) {
            HttpResponses.errorAndClose(response, tooLarge());
            return;
        }
        Buffer body = Buffer.buffer();
        boolean[] refused = {false};
        req.handler(chunk -> {
            if (refused[0]) {
                return;
            }
            if (body.length() + chunk.length() > MAX_BODY_BYTES) {
                refused[0] = true;
                HttpResponses.errorAndClose(response, tooLarge());
                return;
            }
            body.appendBuffer(chunk);
        });
        req.endHandler(v -> {
            if (!refused[0]) {
                exchange.submitLater(body, submitters);
            }
        });
    }

    private static OpenAiError tooLarge() {
        return new OpenAiError(413, OpenAiError.INVALID_REQUEST, "the request body is larger than "
                + (MAX_BODY_BYTES >> 20) + " MiB", null, "request_too_large");
    }

    private void health(HttpServerResponse response) {
        RouterState.Served served = state.served();
        String status = served == null ? "loading" : state.draining() ? "draining"
                : state.serving() ? "serving" : "not_serving";
        ObjectNode body = json.createObjectNode().put("status", status);
        HttpResponses.json(response, status.equals("serving") ? 200 : 503, body);
    }

    private void models(HttpServerResponse response, String wanted) {
        RouterState.Served served = state.served();
        if (served == null) {
            HttpResponses.error(response, OpenAiError.unavailable("the model is still loading; retry shortly",
                    "loading"));
            return;
        }
        String id = served.modelId();
        if (wanted != null && !wanted.equals(id)) {
            HttpResponses.error(response, new OpenAiError(404, OpenAiError.INVALID_REQUEST, "the model '" + wanted
                    + "' does not exist; this server serves '" + id + "'", "model", "model_not_found"));
            return;
        }
        ObjectNode model = json.createObjectNode().put("id", id).put("object", "model").put("created", started)
                .put("owned_by", "expertmesh").put("root", id)
                .put("max_model_len", served.model().config().maxPositions())
                // not OpenAI's: the token ids a prompt given as ids may hold, for clients without the tokenizer
                .put("vocab_size", served.model().config().vocabSize());
        if (wanted != null) {
            HttpResponses.json(response, 200, model);
            return;
        }
        ObjectNode list = json.createObjectNode().put("object", "list");
        list.putArray("data").add(model);
        HttpResponses.json(response, 200, list);
    }

    /**
     * The end of a drain: stops listening and lets answers still being written (a stream's last events, which
     * the engine handed over just before it went idle) go out, for at most {@code grace}; then closes.
     */
    public void shutdown(java.time.Duration grace) {
        try {
            server.shutdown(grace.toMillis(), TimeUnit.MILLISECONDS).toCompletionStage().toCompletableFuture()
                    .get(grace.toMillis() + 5_000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException e) {
            LOG.warn("The HTTP API did not shut down within {}", grace, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        close();
    }

    /** Stops listening and closes every connection at once (running streams are cut); then the submit threads. */
    @Override
    public void close() {
        try {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            LOG.warn("The HTTP API did not close cleanly", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        submitters.shutdownNow();
    }
}
