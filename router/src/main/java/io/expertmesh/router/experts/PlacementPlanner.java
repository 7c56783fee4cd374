package io.expertmesh.router.experts;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Makes expert placements (pure: no I/O). Primary copies first: experts are placed in units of the gate's expert
 * groups when there are at least as many groups as workers, so node-limited routing ({@code topk_group}) keeps a
 * token's experts on few workers; without load statistics units go to workers in contiguous ranges, with them
 * by longest-processing-time packing (heaviest unit to the least loaded worker, at most ⌈units/workers⌉ each).
 * Then {@code redundant} extra replicas per layer: with measured load, EPLB-style, the copies of the hottest
 * experts and all primaries are packed together by load (the router splits an expert's tokens evenly over its
 * replicas, so a copy halves, thirds, … its load); without, each extra copy goes to the least loaded worker
 * that does not hold that expert yet.
 */
public final class PlacementPlanner {
    private final int groups;

    /** @param groups the gate's expert groups ({@code n_group}; 1 when it has none) */
    public PlacementPlanner(int groups) {
        this.groups = Math.max(1, groups);
    }

    /**
     * A fresh plan over {@code workers}.
     *
     * @param shape     gives the layers and experts (its replicas are ignored)
     * @param load      tokens routed per [layer][expert] so far (rows of dense layers may be null); all zero when
     *                  nothing is known yet
     * @param redundant extra replicas per MoE layer (at most one copy of an expert per worker)
     */
    public ExpertPlacement plan(ExpertPlacement shape, List<String> workers, long[][] load, int redundant) {
        if (workers.isEmpty()) {
            throw new IllegalArgumentException("no expert worker to place experts on");
        }
        if (redundant < 0) {
            throw new IllegalArgumentException("redundant experts must be >= 0, got " + redundant);
        }
        int n = shape.numExperts();
        String[][][] r = shape.copy();
        for (int l : shape.moeLayers()) {
            double[] weight = weights(load == null ? null : load[l], n);
            boolean measured = load != null && total(load[l]) > 0;
            int[][] holders = measured && redundant > 0 ? packReplicas(weight, workers.size(), redundant)
                    : replicate(primaries(weight, measured, workers.size()), weight, workers.size(), redundant);
            for (int e = 0; e < n; e++) {
                r[l][e] = Arrays.stream(holders[e]).mapToObj(workers::get).toArray(String[]::new);
            }
        }
        return new ExpertPlacement(shape.epoch() + 1, n, r);
    }

    /**
     * {@code current} with every expert that has no replica placed on a live worker (the least loaded one under
     * {@code load}); nothing else moves.
     */
    public ExpertPlacement reassignUnplaced(ExpertPlacement current, List<String> live, long[][] load) {
        String[][][] r = current.copy();
        if (live.isEmpty()) {
            return new ExpertPlacement(current.epoch() + 1, current.numExperts(), r);
        }
        int n = current.numExperts();
        for (int l : current.moeLayers()) {
            double[] weight = weights(load == null ? null : load[l], n);
            double[] workerLoad = new double[live.size()];
            for (int e = 0; e < n; e++) {
                for (String w : r[l][e]) {
                    int i = live.indexOf(w);
                    if (i >= 0) {
                        workerLoad[i] += weight[e] / r[l][e].length;
                    }
                }
            }
            for (int e = 0; e < n; e++) {
                if (r[l][e].length == 0) {
                    int w = argMin(workerLoad, i -> true);
                    r[l][e] = new String[]{live.get(w)};
                    workerLoad[w] += weight[e];
                }
            }
        }
        return new ExpertPlacement(current.epoch() + 1, n, r);
    }

    /** Load per worker of {@code layer} under {@code plan}: Σ over held experts of load / replicas. */
    public static double[] workerLoads(ExpertPlacement plan, int layer, long[] expertLoad, List<String> workers) {
        double[] out = new double[workers.size()];
        for (int e = 0; e < plan.numExperts(); e++) {
            String[] holders = plan.replicasUnsafe(layer, e);
            for (String w : holders) {
                int i = workers.indexOf(w);
                if (i >= 0) {
                    out[i] += (double) expertLoad[e] / holders.length;
                }
            }
        }
        return out;
    }

    /** max / mean of {@code values} (1 when all are equal; 0 when all are zero). */
    public static double imbalance(double[] values) {
        double max = 0;
        double sum = 0;
        for (double v : values) {
            max = Math.max(max, v);
            sum += v;
        }
        return sum == 0 ? 0 : max / (sum / values.length);
    }

    private static double[] weights(long[] load, int n) {
        double[] w = new double[n];
        for (int e = 0; e < n; e++) {
            // +1: an expert never seen still costs memory and may be routed to later.
            w[e] = 1 + (load == null ? 0 : load[e]);
        }
        return w;
    }

    private static long total(long[] load) {
        long t = 0;
        if (load != null) {
            for (long v : load) {
                t += v;
            }
        }
        return t;
    }

    /**
     * EPLB with measured load: replica counts first (each extra copy to the expert with the most load per copy),
     * then every copy, heaviest first, onto the least loaded worker that does not hold that expert yet and has
     * fewer than its share of copies.
     */
    private static int[][] packReplicas(double[] weight, int workers, int redundant) {
        int n = weight.length;
        int[] count = new int[n];
        Arrays.fill(count, 1);
        for (int r = 0; r < redundant; r++) {
            int best = -1;
            for (int e = 0; e < n; e++) {
                if (count[e] < workers && (best < 0 || weight[e] / count[e] > weight[best] / count[best])) {
                    best = e;
                }
            }
            if (best < 0) {
                break;
            }
            count[best]++;
        }
        List<int[]> copies = new ArrayList<>();
        for (int e = 0; e < n; e++) {
            for (int c = 0; c < count[e]; c++) {
                copies.add(new int[]{e, c});
            }
        }
        copies.sort((a, b) -> {
            double wa = weight[a[0]] / count[a[0]];
            double wb = weight[b[0]] / count[b[0]];
            return wa != wb ? Double.compare(wb, wa) : a[0] != b[0] ? Integer.compare(a[0], b[0])
                    : Integer.compare(a[1], b[1]);
        });
        int cap = (copies.size() + workers - 1) / workers;
        double[] load = new double[workers];
        int[] held = new int[workers];
        List<List<Integer>> h = new ArrayList<>();
        for (int e = 0; e < n; e++) {
            h.add(new ArrayList<>());
        }
        for (int[] copy : copies) {
            List<Integer> mine = h.get(copy[0]);
            int w = argMin(load, i -> !mine.contains(i) && held[i] < cap);
            if (w < 0) {
                w = argMin(load, i -> !mine.contains(i));
            }
            mine.add(w);
            load[w] += weight[copy[0]] / count[copy[0]];
            held[w]++;
        }
        int[][] out = new int[n][];
        for (int e = 0; e < n; e++) {
            out[e] = h.get(e).stream().mapToInt(Integer::intValue).toArray();
        }
        return out;
    }

    /** One holder per expert: units (groups or single experts) spread contiguously or packed by load. */
    private int[][] primaries(double[] weight, boolean measured, int workers) {
        int n = weight.length;
        boolean byGroup = groups > 1 && groups >= workers && n % groups == 0;
        int units = byGroup ? groups : n;
        int size = n / units;
        int[] unitWorker = new int[units];
        if (!measured) {
            for (int u = 0; u < units; u++) {
                unitWorker[u] = (int) ((long) u * workers / units);
            }
        } else {
            double[] unitLoad = new double[units];
            for (int e = 0; e < n; e++) {
                unitLoad[e / size] += weight[e];
            }
            Integer[] order = new Integer[units];
            for (int u = 0; u < units; u++) {
                order[u] = u;
            }
            Arrays.sort(order, (a, b) -> unitLoad[a] != unitLoad[b] ? Double.compare(unitLoad[b], unitLoad[a])
                    : Integer.compare(a, b));
            int cap = (units + workers - 1) / workers;
            double[] load = new double[workers];
            int[] count = new int[workers];
            for (int u : order) {
                int w = argMin(load, i -> count[i] < cap);
                unitWorker[u] = w;
                load[w] += unitLoad[u];
                count[w]++;
            }
        }
        int[][] holders = new int[n][];
        for (int e = 0; e < n; e++) {
            holders[e] = new int[]{unitWorker[e / size]};
        }
        return holders;
    }

    private static int[][] replicate(int[][] holders, double[] weight, int workers, int redundant) {
        int n = weight.length;
        List<List<Integer>> h = new ArrayList<>();
        double[] workerLoad = new double[workers];
        int[] held = new int[workers];
        for (int e = 0; e < n; e++) {
            List<Integer> list = new ArrayList<>();
            for (int w : holders[e]) {
                list.add(w);
                workerLoad[w] += weight[e] / holders[e].length;
                held[w]++;
            }
            h.add(list);
        }
        // Keep memory even: no worker holds more than its share of all copies of this layer.
        int cap = (n + redundant + workers - 1) / workers;
        boolean[] full = new boolean[n];
        for (int added = 0; added < redundant; ) {
            // Relieve the bottleneck: the busiest worker's expert with the most load per replica, else any's.
            int busiest = argMin(negate(workerLoad), i -> true);
            int best = hottest(h, weight, full, workers, e -> h.get(e).contains(busiest));
            if (best < 0) {
                best = hottest(h, weight, full, workers, e -> true);
            }
            if (best < 0) {
                break;
            }
            List<Integer> mine = h.get(best);
            int w = argMin(workerLoad, i -> !mine.contains(i) && held[i] < cap);
            if (w < 0) {
                w = argMin(workerLoad, i -> !mine.contains(i)); // every worker at its share: exceed it by one
            }
            if (w < 0) {
                full[best] = true;
                continue;
            }
            double before = weight[best] / mine.size();
            double after = weight[best] / (mine.size() + 1);
            for (int x : mine) {
                workerLoad[x] -= before - after;
            }
            mine.add(w);
            workerLoad[w] += after;
            held[w]++;
            added++;
        }
        int[][] out = new int[n][];
        for (int e = 0; e < n; e++) {
            out[e] = h.get(e).stream().mapToInt(Integer::intValue).toArray();
        }
        return out;
    }

    /** The expert passing {@code which} with the most load per replica that can take another replica; -1 if none. */
    private static int hottest(List<List<Integer>> holders, double[] weight, boolean[] full, int workers,
                               java.util.function.IntPredicate which) {
        int best = -1;
        for (int e = 0; e < weight.length; e++) {
            if (!full[e] && holders.get(e).size() < workers && which.test(e) && (best < 0
                    || weight[e] / holders.get(e).size() > weight[best] / holders.get(best).size())) {
                best = e;
            }
        }
        return best;
    }

    private static double[] negate(double[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = -v[i];
        }
        return out;
    }

    private static int argMin(double[] values, java.util.function.IntPredicate allowed) {
        int best = -1;
        for (int i = 0; i < values.length; i++) {
            if (allowed.test(i) && (best < 0 || values[i] < values[best])) {
                best = i;
            }
        }
        return best;
    }
}
