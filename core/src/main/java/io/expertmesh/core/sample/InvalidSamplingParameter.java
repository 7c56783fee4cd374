package io.expertmesh.core.sample;

/**
 * A sampling or stop parameter out of its range. Carries the API field it is about (snake_case, as clients spell
 * it: {@code top_p}, {@code stop[2]}), so a server can name the field without reading the message.
 */
public final class InvalidSamplingParameter extends IllegalArgumentException {
    private final String field;

    public InvalidSamplingParameter(String field, String message) {
        super(message);
        this.field = field;
    }

    /** The API field, e.g. {@code repetition_penalty} or {@code stop[0]}. */
    public String field() {
        return field;
    }
}
