package io.expertmesh.gpucheck;

/**
 * One kernel-versus-reference comparison: the relative L2 error {@code ‖out − ref‖ / ‖ref‖} against its tolerance.
 * An output with a NaN (the poison was not overwritten, or the kernel made one) never passes.
 */
public record CheckResult(String name, double error, double tolerance, String detail) {

    public boolean passed() {
        return !Double.isNaN(error) && error <= tolerance;
    }

    @Override
    public String toString() {
        return String.format("%-44s %s  rel.err %.3e (tol %.0e)%s", name, passed() ? "PASS" : "FAIL", error,
                tolerance, detail.isEmpty() ? "" : "  " + detail);
    }
}
