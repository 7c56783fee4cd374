package io.expertmesh.router.experts;

/** No live expert worker can serve some experts a step needs; the message names them. */
public final class ExpertsUnavailableException extends RuntimeException {
    public ExpertsUnavailableException(String message) {
        super(message);
    }
}
