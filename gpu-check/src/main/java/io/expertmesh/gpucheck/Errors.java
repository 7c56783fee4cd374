package io.expertmesh.gpucheck;

/** Error measures for the checks. */
final class Errors {
    private Errors() {
    }

    /** ‖out − ref‖₂ / ‖ref‖₂; NaN when any output is NaN or infinite (an unwritten, poisoned element). */
    static double relativeL2(float[] out, double[] ref) {
        if (out.length != ref.length) {
            throw new IllegalArgumentException(out.length + " outputs for " + ref.length + " references");
        }
        double num = 0;
        double den = 0;
        for (int i = 0; i < out.length; i++) {
            if (!Float.isFinite(out[i])) {
                return Double.NaN;
            }
            double d = out[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }

    static double relativeL2(float[] out, float[] ref) {
        double[] r = new double[ref.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = ref[i];
        }
        return relativeL2(out, r);
    }
}
