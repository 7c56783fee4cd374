package io.expertmesh.router.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/** Whole JSON answers (event loop only). */
final class HttpResponses {
    private static final ObjectMapper JSON = new ObjectMapper();

    private HttpResponses() {
    }

    static void json(HttpServerResponse response, int status, JsonNode body) {
        if (response.ended() || response.closed()) {
            return;
        }
        byte[] bytes;
        try {
            bytes = JSON.writeValueAsBytes(body);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a response did not serialize", e); // our own tree: cannot happen
        }
        response.setStatusCode(status).putHeader("Content-Type", "application/json").end(Buffer.buffer(bytes));
    }

    static void error(HttpServerResponse response, OpenAiError error) {
        if (error.status() == 401) {
            response.putHeader("WWW-Authenticate", "Bearer");
        }
        json(response, error.status(), error.toJson());
    }

    /**
     * An error sent before the request body was read (refused token, body too large): the connection closes
     * after it, so the unread body cannot be taken for the next request.
     */
    static void errorAndClose(HttpServerResponse response, OpenAiError error) {
        if (!response.ended() && !response.closed()) {
            response.putHeader("Connection", "close");
        }
        error(response, error);
    }
}
