package io.expertmesh.worker;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * Which routed experts (of every MoE layer) a worker loads at start-up, parsed from {@code --experts}:
 * {@code all}; {@code none} (a worker whose experts a router assigns with LoadExperts); a list of ids and ranges
 * ({@code 0-7}, {@code 0-3,9,12-15}); or {@code shard:I/N}, every expert {@code e} with {@code e % N == I}.
 *
 * @param spec the text it was parsed from, for logs
 */
public record ExpertSelection(String spec, Kind kind, int[] ranges, int shardIndex, int shardCount) {

    /** The forms of a selection. */
    public enum Kind { ALL, NONE, RANGES, SHARD }

    public static final ExpertSelection ALL = new ExpertSelection("all", Kind.ALL, new int[0], 0, 1);
    public static final ExpertSelection NONE = new ExpertSelection("none", Kind.NONE, new int[0], 0, 1);

    public ExpertSelection {
        ranges = ranges.clone();
    }

    /** Parses {@code spec}; IllegalArgumentException with what is wrong. */
    public static ExpertSelection parse(String spec) {
        String s = spec.trim().toLowerCase(Locale.ROOT);
        if (s.equals("all")) {
            return ALL;
        }
        if (s.equals("none")) {
            return NONE;
        }
        if (s.startsWith("shard:")) {
            String[] in = s.substring(6).split("/", -1);
            if (in.length != 2) {
                throw new IllegalArgumentException("--experts shard:I/N expected, got '" + spec + "'");
            }
            int i = number(in[0], spec);
            int n = number(in[1], spec);
            if (n < 1 || i >= n) {
                throw new IllegalArgumentException("--experts shard:I/N needs 0 <= I < N, got '" + spec + "'");
            }
            return new ExpertSelection(spec, Kind.SHARD, new int[0], i, n);
        }
        List<Integer> bounds = new ArrayList<>();
        for (String part : s.split(",", -1)) {
            int dash = part.indexOf('-');
            int lo = number(dash < 0 ? part : part.substring(0, dash), spec);
            int hi = dash < 0 ? lo : number(part.substring(dash + 1), spec);
            if (hi < lo) {
                throw new IllegalArgumentException("--experts range " + part + " is empty (in '" + spec + "')");
            }
            bounds.add(lo);
            bounds.add(hi);
        }
        return new ExpertSelection(spec, Kind.RANGES, bounds.stream().mapToInt(Integer::intValue).toArray(), 0, 1);
    }

    private static int number(String text, String spec) {
        try {
            int v = Integer.parseInt(text.trim());
            if (v < 0) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--experts expects all, none, ids and ranges (0-7,9) or shard:I/N; '"
                    + text + "' in '" + spec + "' is not a non-negative number");
        }
    }

    /** The selected expert ids below {@code numExperts}, ascending; an id beyond the model is an error. */
    public int[] resolve(int numExperts) {
        return switch (kind) {
            case ALL -> IntStream.range(0, numExperts).toArray();
            case NONE -> new int[0];
            case SHARD -> IntStream.range(0, numExperts).filter(e -> e % shardCount == shardIndex)
                    .toArray();
            case RANGES -> {
                BitSet set = new BitSet();
                for (int r = 0; r < ranges.length; r += 2) {
                    if (ranges[r + 1] >= numExperts) {
                        throw new IllegalArgumentException("--experts " + spec + " names expert " + ranges[r + 1]
                                + " but the model has " + numExperts + " routed experts (0-" + (numExperts - 1)
                                + ")");
                    }
                    set.set(ranges[r], ranges[r + 1] + 1);
                }
                yield set.stream().toArray();
            }
        };
    }

    @Override
    public String toString() {
        return spec;
    }
}
