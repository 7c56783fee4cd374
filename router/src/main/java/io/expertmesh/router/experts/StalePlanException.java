package io.expertmesh.router.experts;

/**
 * A plan change refused by the placement store: it was made from a plan that is no longer current (another
 * router changed it first), or its epoch does not move forward.
 */
public final class StalePlanException extends IllegalStateException {
    public StalePlanException(String message) {
        super(message);
    }
}
