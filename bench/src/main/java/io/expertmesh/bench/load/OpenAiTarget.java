package io.expertmesh.bench.load;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.security.BearerToken;
import io.expertmesh.security.BearerTokenCredentials;
import io.expertmesh.security.TlsCredentials;
import io.expertmesh.security.TlsFiles;
import io.grpc.Status;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Any OpenAI-compatible server (ExpertMesh's own HTTP API, vLLM, SGLang, llama.cpp's {@code llama-server}) over
 * {@code POST /v1/completions}, streamed.
 *
 * <p>Each request sends the workload's prompt as a list of token ids (OpenAI's completions API allows it, and
 * ExpertMesh, vLLM and llama-server take it), so no tokenizer is needed and every server sees the same tokens;
 * {@code max_tokens}; {@code ignore_eos} (vLLM's and llama-server's field) so outputs have the asked length;
 * {@code temperature 0}, so every server does the same (greedy) sampling work; and
 * {@code stream_options.include_usage}, so the output is counted by the server's {@code usage} when it sends one
 * (as vLLM's benchmark counts it) rather than by chunks. {@link OpenAiStreamReader} reads the stream.
 *
 * <p>One virtual thread per request reads its stream, timestamping each chunk as it is read. The JDK's
 * {@link HttpClient} speaks HTTP/1.1 here (what llama-server and vLLM serve; one connection per request in flight,
 * kept for the next). A bearer token goes only over TLS or to a loopback address, as over gRPC.
 */
public final class OpenAiTarget implements BenchTarget {
    private static final Logger log = LoggerFactory.getLogger(OpenAiTarget.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The most of an error body kept for its message. */
    private static final int ERROR_BODY_LIMIT = 4096;

    private final URI base;
    private final String requestedModel;
    private final String authorization;
    private final HttpClient http;
    private volatile String model;

    private OpenAiTarget(URI base, String requestedModel, String authorization, HttpClient http) {
        this.base = base;
        this.requestedModel = requestedModel;
        this.model = requestedModel;
        this.authorization = authorization;
        this.http = http;
    }

    /**
     * A target at {@code url} ({@code http://HOST:PORT} or {@code https://HOST:PORT}, optionally with a path
     * prefix; a trailing {@code /v1}, as OpenAI clients' base URLs have it, is accepted too).
     *
     * @param model the model to name in requests, or {@code null} for the one the server lists first
     * @param token sent as {@code Authorization: Bearer}, or {@code null}
     * @param tls   how to check an {@code https} server ({@code null}: the JDK's default roots)
     * @throws IllegalArgumentException for a malformed URL, TLS files with {@code http}, or a token that would go
     *                                  in plain text to another host
     */
    public static OpenAiTarget create(String url, String model, BearerToken token, TlsFiles tls) {
        URI base = baseUri(url);
        boolean https = base.getScheme().equals("https");
        if (tls != null && !https) {
            throw new IllegalArgumentException("TLS options need an https:// target, got " + url);
        }
        if (token != null && !https && !BearerTokenCredentials.isLoopback(base.getAuthority())) {
            throw new IllegalArgumentException("refusing to send the bearer token in plain text to "
                    + base.getAuthority() + "; use an https:// target");
        }
        HttpClient.Builder b = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10));
        if (https) {
            b.sslContext(TlsCredentials.clientSslContext(tls != null ? tls : TlsFiles.client(null)));
        }
        return new OpenAiTarget(base, model, token == null ? null : token.authorizationHeader(), b.build());
    }

    /** {@code url} without a trailing slash or {@code /v1}, checked. */
    public static URI baseUri(String url) {
        URI u;
        try {
            u = new URI(url.strip());
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("--target " + url + " is not a URL: " + e.getReason());
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw new IllegalArgumentException("--backend openai needs --target http://HOST:PORT or "
                    + "https://HOST:PORT, got " + url);
        }
        if (u.getHost() == null) {
            throw new IllegalArgumentException("--target " + url + " has no host");
        }
        if (u.getRawQuery() != null || u.getRawFragment() != null) {
            throw new IllegalArgumentException("--target " + url + ": give the server's base URL, without ?query "
                    + "or #fragment");
        }
        String path = u.getRawPath() == null ? "" : u.getRawPath();
        while (path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        if (path.endsWith("/v1")) {
            path = path.substring(0, path.length() - 3);
        }
        return URI.create(scheme + "://" + u.getRawAuthority() + path);
    }

    /**
     * Asks {@code GET /v1/models}: the model to name (the asked one, or the first listed), its context
     * ({@code max_model_len} as vLLM and ExpertMesh give it, or llama-server's {@code meta.n_ctx_train}) and its
     * vocabulary (ExpertMesh's {@code vocab_size}, llama-server's {@code meta.n_vocab}; 0 when absent, as vLLM's).
     */
    @Override
    public ServedModel model() {
        HttpRequest.Builder req = HttpRequest.newBuilder(endpoint("/v1/models")).timeout(Duration.ofSeconds(30))
                .header("Accept", "application/json").GET();
        if (authorization != null) {
            req.header("Authorization", authorization);
        }
        HttpResponse<String> r;
        try {
            r = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new TargetException("cannot reach " + base + ": " + describe(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TargetException("interrupted while asking " + base + " for its models");
        }
        if (r.statusCode() != 200) {
            throw new TargetException(base + "/v1/models answered HTTP " + r.statusCode() + ": "
                    + errorMessage(r.body()));
        }
        JsonNode list;
        try {
            list = JSON.readTree(r.body()).path("data");
        } catch (JsonProcessingException e) {
            throw new TargetException(base + "/v1/models answered with something other than JSON: "
                    + OpenAiStreamReader.abbreviate(r.body()));
        }
        List<String> ids = new ArrayList<>();
        list.forEach(m -> ids.add(m.path("id").asText()));
        JsonNode entry = null;
        for (JsonNode m : list) {
            if (requestedModel == null || requestedModel.equals(m.path("id").asText())) {
                entry = m;
                break;
            }
        }
        if (entry == null) {
            if (requestedModel == null) {
                throw new TargetException(base + "/v1/models lists no model; name one with --model");
            }
            // llama-server lists its file path and answers to any name: the server decides
            log.warn("{} lists the models {}, not '{}'; sending '{}' anyway", base, ids, requestedModel,
                    requestedModel);
            if (list.size() != 1) {
                return new ServedModel(requestedModel, 0, 0);
            }
            entry = list.get(0); // the one model there is: its vocabulary and context are the ones served
        }
        String id = requestedModel != null ? requestedModel : entry.path("id").asText();
        model = id;
        JsonNode meta = entry.path("meta");
        int context = entry.path("max_model_len").asInt(meta.path("n_ctx_train").asInt(0));
        return new ServedModel(id, entry.path("vocab_size").asInt(meta.path("n_vocab").asInt(0)), context);
    }

    @Override
    public InFlight start(Workload.Item item, String requestId, boolean ignoreEos, StreamListener listener) {
        Stream s = new Stream(request(item, ignoreEos), item.promptIds().length, listener);
        s.reader = Thread.ofVirtual().name("bench-" + requestId).start(s::run);
        return s::cancel;
    }

    HttpRequest request(Workload.Item item, boolean ignoreEos) {
        ObjectNode body = JSON.createObjectNode();
        if (model != null) {
            body.put("model", model);
        }
        var prompt = body.putArray("prompt");
        for (int id : item.promptIds()) {
            prompt.add(id);
        }
        body.put("max_tokens", item.maxTokens()).put("temperature", 0).put("ignore_eos", ignoreEos)
                .put("stream", true).putObject("stream_options").put("include_usage", true);
        HttpRequest.Builder b = HttpRequest.newBuilder(endpoint("/v1/completions"))
                .header("Content-Type", "application/json").header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (authorization != null) {
            b.header("Authorization", authorization);
        }
        return b.build();
    }

    private URI endpoint(String path) {
        return URI.create(base + path);
    }

    /** The base URL requests go to. */
    public URI base() {
        return base;
    }

    @Override
    public String protocol() {
        return "openai";
    }

    @Override
    public void close() {
        // not close(), which waits for exchanges still open: the runner has ended or cancelled every request
        http.shutdownNow();
    }

    /** One streamed completion, read on its own virtual thread. */
    private final class Stream {
        private final HttpRequest request;
        private final int promptTokens;
        private final StreamListener listener;
        private volatile Thread reader;
        private volatile boolean cancelled;
        private volatile CompletableFuture<HttpResponse<InputStream>> response;
        private volatile InputStream body;

        Stream(HttpRequest request, int promptTokens, StreamListener listener) {
            this.request = request;
            this.promptTokens = promptTokens;
            this.listener = listener;
        }

        void run() {
            OpenAiStreamReader events = new OpenAiStreamReader(listener, promptTokens);
            boolean over = false;
            try {
                HttpResponse<InputStream> r;
                try {
                    r = send();
                } catch (ExecutionException e) {
                    if (!staleConnection(e.getCause())) {
                        throw e;
                    }
                    // no byte of an answer on a kept-alive connection the server had closed (cpp-httplib closes
                    // idle ones after 5 s): the request goes again, once, on a new connection
                    r = send();
                }
                body = r.body();
                if (cancelled) {
                    body.close();
                    listener.onError(Status.Code.CANCELLED, "cancelled");
                    return;
                }
                if (r.statusCode() != 200) {
                    String text;
                    try (InputStream in = body) {
                        text = new String(in.readNBytes(ERROR_BODY_LIMIT), StandardCharsets.UTF_8);
                    }
                    listener.onError(HttpStatusCodes.toGrpc(r.statusCode()), "HTTP " + r.statusCode() + ": "
                            + errorMessage(text));
                    return;
                }
                try (BufferedReader in = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8))) {
                    for (String line; (line = in.readLine()) != null; ) {
                        if (!over && events.line(line)) {
                            // the end is timed at [DONE]; the rest is read so the connection can serve again
                            over = true;
                            events.end();
                        }
                    }
                }
                if (!over) {
                    events.end();
                }
            } catch (ExecutionException e) {
                Throwable cause = e.getCause() == null ? e : e.getCause();
                fail(events, over, cause);
            } catch (IOException e) {
                fail(events, over, e);
            } catch (CancellationException | InterruptedException e) {
                fail(events, over, e);
            }
        }

        private HttpResponse<InputStream> send() throws ExecutionException, InterruptedException {
            response = http.sendAsync(request, HttpResponse.BodyHandlers.ofInputStream());
            if (cancelled) {
                response.cancel(true);
            }
            return response.get();
        }

        private void fail(OpenAiStreamReader events, boolean over, Throwable e) {
            if (over) {
                return; // the request already ended; only the drain of the connection failed
            }
            if (cancelled) {
                listener.onError(Status.Code.CANCELLED, "cancelled");
            } else if (e instanceof HttpConnectTimeoutException) {
                listener.onError(Status.Code.UNAVAILABLE, "cannot connect to " + base + ": " + describe(e));
            } else if (e instanceof HttpTimeoutException) {
                listener.onError(Status.Code.DEADLINE_EXCEEDED, describe(e));
            } else if (e instanceof ConnectException) {
                listener.onError(Status.Code.UNAVAILABLE, "cannot connect to " + base + ": " + describe(e));
            } else {
                listener.onError(Status.Code.UNAVAILABLE, "the connection to " + base + " failed: " + describe(e));
            }
        }

        void cancel(String reason) {
            cancelled = true;
            CompletableFuture<HttpResponse<InputStream>> r = response;
            if (r != null) {
                r.cancel(true);
            }
            InputStream in = body;
            if (in != null) {
                try {
                    in.close();
                } catch (IOException e) {
                    log.debug("closing a cancelled stream", e);
                }
            }
            Thread t = reader;
            if (t != null) {
                t.interrupt();
            }
        }
    }

    /**
     * Whether a request failed because the connection it went out on was already closed by the server: no byte
     * of an answer came, and the failure is not one of connecting or of time.
     */
    static boolean staleConnection(Throwable e) {
        return e instanceof IOException && !(e instanceof ConnectException) && !(e instanceof HttpTimeoutException)
                && !(e instanceof SSLException) && e.getMessage() != null
                && (e.getMessage().contains("received no bytes") || e.getMessage().contains("EOF reached"));
    }

    /** OpenAI's {@code error.message} of an error body, or the body itself. */
    static String errorMessage(String body) {
        try {
            JsonNode error = JSON.readTree(body).path("error");
            if (error.isObject() && error.path("message").isTextual()) {
                return error.get("message").asText();
            }
            if (error.isTextual()) {
                return error.asText();
            }
        } catch (JsonProcessingException e) {
            // not JSON: the body says it
        }
        return body.isBlank() ? "(no body)" : OpenAiStreamReader.abbreviate(body);
    }

    /** An I/O failure in words: the JDK's HTTP client often throws with a null message and the reason as cause. */
    static String describe(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof ConnectException) {
                return c.getMessage() == null ? "connection refused" : c.getMessage();
            }
        }
        Throwable t = e;
        while (t.getMessage() == null && t.getCause() != null) {
            t = t.getCause();
        }
        if (t instanceof SSLException) {
            return "TLS handshake failed: " + t.getMessage();
        }
        return t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    }
}
