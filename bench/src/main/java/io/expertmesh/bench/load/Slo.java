package io.expertmesh.bench.load;

/**
 * Service-level objectives for goodput, parsed from {@code ttft:MS,tpot:MS} (either part may be left out): a
 * request is good when it succeeded and meets every objective given. A request with a single output token has no
 * TPOT and meets any TPOT objective.
 *
 * @param ttftMs largest acceptable TTFT in milliseconds, or NaN for none
 * @param tpotMs largest acceptable TPOT in milliseconds, or NaN for none
 */
public record Slo(double ttftMs, double tpotMs) {
    /** No objectives: every successful request is good. */
    public static final Slo NONE = new Slo(Double.NaN, Double.NaN);

    public Slo {
        if (ttftMs <= 0 || tpotMs <= 0 || Double.isInfinite(ttftMs) || Double.isInfinite(tpotMs)) {
            throw new IllegalArgumentException("SLO limits must be positive milliseconds");
        }
    }

    /** Parses {@code ttft:MS,tpot:MS}; an empty or null spec is {@link #NONE}. */
    public static Slo parse(String spec) {
        if (spec == null || spec.isBlank()) {
            return NONE;
        }
        double ttft = Double.NaN;
        double tpot = Double.NaN;
        for (String part : spec.split(",")) {
            String[] kv = part.strip().split(":");
            if (kv.length != 2) {
                throw new IllegalArgumentException("bad --slo '" + spec + "': expected ttft:MS,tpot:MS");
            }
            double ms;
            try {
                ms = Double.parseDouble(kv[1]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad --slo '" + spec + "': '" + kv[1] + "' is not a number");
            }
            switch (kv[0].strip().toLowerCase(java.util.Locale.ROOT)) {
                case "ttft" -> ttft = ms;
                case "tpot" -> tpot = ms;
                default -> throw new IllegalArgumentException("bad --slo '" + spec + "': unknown metric '" + kv[0]
                        + "' (ttft, tpot)");
            }
        }
        return new Slo(ttft, tpot);
    }

    /** Whether {@code r} succeeded and meets every objective. */
    public boolean met(RequestRecord r) {
        if (!r.ok()) {
            return false;
        }
        if (!Double.isNaN(ttftMs) && (r.ttftNanos() < 0 || r.ttftNanos() / 1e6 > ttftMs)) {
            return false;
        }
        double tpot = r.tpotNanos();
        return Double.isNaN(tpotMs) || Double.isNaN(tpot) || tpot / 1e6 <= tpotMs;
    }

    /** Whether no objective is set. */
    public boolean none() {
        return Double.isNaN(ttftMs) && Double.isNaN(tpotMs);
    }

    @Override
    public String toString() {
        if (none()) {
            return "none";
        }
        StringBuilder sb = new StringBuilder();
        if (!Double.isNaN(ttftMs)) {
            sb.append("ttft:").append(ms(ttftMs));
        }
        if (!Double.isNaN(tpotMs)) {
            sb.append(sb.isEmpty() ? "" : ",").append("tpot:").append(ms(tpotMs));
        }
        return sb.toString();
    }

    private static String ms(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
}
