package io.expertmesh.bench.load;

/** A benchmark target that cannot be reached or refused to describe its model; the message is one line. */
public final class TargetException extends RuntimeException {
    public TargetException(String message) {
        super(message);
    }
}
