package io.expertmesh.router.experts;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Which expert workers hold each routed expert of each MoE layer: one or more replicas per expert, named by
 * worker address. Immutable; a rebalance or a failure makes a new one with a higher epoch, which the router
 * switches to atomically.
 */
public final class ExpertPlacement {
    private static final String[] NONE = new String[0];

    private final long epoch;
    private final int numExperts;
    /** [layer][expert] → worker addresses; null rows for dense layers. */
    private final String[][][] replicas;

    ExpertPlacement(long epoch, int numExperts, String[][][] replicas) {
        this.epoch = epoch;
        this.numExperts = numExperts;
        this.replicas = replicas;
    }

    /** An empty plan for a model with {@code numLayers} layers, of which {@code moeLayers} are MoE layers. */
    static ExpertPlacement empty(int numLayers, int[] moeLayers, int numExperts) {
        String[][][] r = new String[numLayers][][];
        for (int l : moeLayers) {
            r[l] = new String[numExperts][];
            Arrays.fill(r[l], NONE);
        }
        return new ExpertPlacement(0, numExperts, r);
    }

    public long epoch() {
        return epoch;
    }

    public int numExperts() {
        return numExperts;
    }

    public int numLayers() {
        return replicas.length;
    }

    public boolean isMoeLayer(int layer) {
        return layer >= 0 && layer < replicas.length && replicas[layer] != null;
    }

    /** The MoE layers, ascending. */
    public int[] moeLayers() {
        List<Integer> out = new ArrayList<>();
        for (int l = 0; l < replicas.length; l++) {
            if (replicas[l] != null) {
                out.add(l);
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The workers holding {@code expert} of {@code layer} (empty when none does). */
    public String[] replicas(int layer, int expert) {
        return replicas[layer][expert].clone();
    }

    String[] replicasUnsafe(int layer, int expert) {
        return replicas[layer][expert];
    }

    /** Per worker, per layer, the experts it holds, ascending (workers in first-seen order). */
    public Map<String, Map<Integer, int[]>> byWorker() {
        Map<String, Map<Integer, List<Integer>>> acc = new LinkedHashMap<>();
        for (int l = 0; l < replicas.length; l++) {
            if (replicas[l] == null) {
                continue;
            }
            for (int e = 0; e < numExperts; e++) {
                for (String w : replicas[l][e]) {
                    acc.computeIfAbsent(w, k -> new TreeMap<>()).computeIfAbsent(l, k -> new ArrayList<>()).add(e);
                }
            }
        }
        Map<String, Map<Integer, int[]>> out = new LinkedHashMap<>();
        acc.forEach((w, layers) -> {
            Map<Integer, int[]> m = new TreeMap<>();
            layers.forEach((l, ids) -> m.put(l, ids.stream().mapToInt(Integer::intValue).sorted().toArray()));
            out.put(w, m);
        });
        return out;
    }

    /** Experts (as "layer:expert") that no worker holds. */
    public List<String> unplaced() {
        List<String> out = new ArrayList<>();
        for (int l = 0; l < replicas.length; l++) {
            if (replicas[l] == null) {
                continue;
            }
            for (int e = 0; e < numExperts; e++) {
                if (replicas[l][e].length == 0) {
                    out.add(l + ":" + e);
                }
            }
        }
        return out;
    }

    /** Total replicas over all layers and experts. */
    public int replicaCount() {
        int n = 0;
        for (String[][] layer : replicas) {
            if (layer != null) {
                for (String[] r : layer) {
                    n += r.length;
                }
            }
        }
        return n;
    }

    /** True when {@code worker} holds at least one copy. */
    public boolean holds(String worker) {
        for (String[][] layer : replicas) {
            if (layer != null) {
                for (String[] r : layer) {
                    if (contains(r, worker)) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    /** This plan with {@code worker} removed from every expert (which may leave experts with no replica). */
    ExpertPlacement without(String worker) {
        String[][][] r = copy();
        for (String[][] layer : r) {
            if (layer != null) {
                for (int e = 0; e < layer.length; e++) {
                    layer[e] = Arrays.stream(layer[e]).filter(w -> !w.equals(worker)).toArray(String[]::new);
                }
            }
        }
        return new ExpertPlacement(epoch + 1, numExperts, r);
    }

    /** A copy of the replica table that the planner may change. */
    String[][][] copy() {
        String[][][] r = new String[replicas.length][][];
        for (int l = 0; l < r.length; l++) {
            if (replicas[l] != null) {
                r[l] = new String[numExperts][];
                for (int e = 0; e < numExperts; e++) {
                    r[l][e] = replicas[l][e].clone();
                }
            }
        }
        return r;
    }

    /** Experts held by {@code worker} here and not in {@code other}: layer → ids, ascending. */
    Map<Integer, int[]> heldOnlyHere(String worker, ExpertPlacement other) {
        Map<Integer, int[]> out = new TreeMap<>();
        for (int l = 0; l < replicas.length; l++) {
            if (replicas[l] == null) {
                continue;
            }
            List<Integer> ids = new ArrayList<>();
            for (int e = 0; e < numExperts; e++) {
                if (contains(replicas[l][e], worker) && !contains(other.replicas[l][e], worker)) {
                    ids.add(e);
                }
            }
            if (!ids.isEmpty()) {
                out.put(l, ids.stream().mapToInt(Integer::intValue).toArray());
            }
        }
        return out;
    }

    static boolean contains(String[] workers, String w) {
        for (String x : workers) {
            if (x.equals(w)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public String toString() {
        return "ExpertPlacement{epoch " + epoch + ", " + replicaCount() + " replicas on " + byWorker().keySet() + "}";
    }
}
