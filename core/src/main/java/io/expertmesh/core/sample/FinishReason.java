package io.expertmesh.core.sample;

/**
 * Why a sequence stopped producing tokens. The wire names are the OpenAI / vLLM {@code finish_reason} strings, so
 * the API layer can pass them through unchanged.
 */
public enum FinishReason {
    /** The model produced an end-of-sequence token, a stop token id, or text matching a stop string. */
    STOP("stop"),
    /** {@code max_tokens} were generated (or the context is full). */
    LENGTH("length"),
    /** The client went away or cancelled the request. */
    CANCELLED("cancelled"),
    /** The server failed while producing this sequence. */
    ERROR("error");

    private final String wireName;

    FinishReason(String wireName) {
        this.wireName = wireName;
    }

    /** The lower-case name used in API responses, e.g. {@code "length"}. */
    public String wireName() {
        return wireName;
    }

    /** The reason with this wire name; IllegalArgumentException listing the known names otherwise. */
    public static FinishReason fromWireName(String name) {
        for (FinishReason r : values()) {
            if (r.wireName.equals(name)) {
                return r;
            }
        }
        throw new IllegalArgumentException("unknown finish reason '" + name
                + "'; expected one of stop, length, cancelled, error");
    }
}
