package io.expertmesh.router.experts;

import java.io.Serializable;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The placement as routers share it: the replica table with its epoch, the load window it started (a rebalance
 * starts a new one, so every router counts load afresh) and when the last rebalance was. Serializable because it
 * lives in a Hazelcast map; immutable by convention (the arrays are never changed once made).
 *
 * @param replicas [layer][expert] → worker addresses; null rows for dense layers
 * @param mac      HMAC-SHA256 of the rest under the tier's secret ({@link #covered}); null when the tier has none
 */
public record SharedPlan(long epoch, long window, long rebalancedAtMillis, int numExperts, String[][][] replicas,
                         byte[] mac) implements Serializable {

    /** An unsigned plan. */
    public SharedPlan(long epoch, long window, long rebalancedAtMillis, int numExperts, String[][][] replicas) {
        this(epoch, window, rebalancedAtMillis, numExperts, replicas, null);
    }

    static SharedPlan of(ExpertPlacement p, long window, long rebalancedAtMillis) {
        return new SharedPlan(p.epoch(), window, rebalancedAtMillis, p.numExperts(), p.copy());
    }

    SharedPlan withMac(byte[] m) {
        return new SharedPlan(epoch, window, rebalancedAtMillis, numExperts, replicas, m);
    }

    /** Every field but the MAC, in a fixed encoding: what the MAC covers. */
    byte[] covered() {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try (java.io.DataOutputStream out = new java.io.DataOutputStream(bytes)) {
            out.writeLong(epoch);
            out.writeLong(window);
            out.writeLong(rebalancedAtMillis);
            out.writeInt(numExperts);
            out.writeInt(replicas.length);
            for (String[][] layer : replicas) {
                out.writeInt(layer == null ? -1 : layer.length);
                if (layer != null) {
                    for (String[] holders : layer) {
                        out.writeInt(holders.length);
                        for (String w : holders) {
                            out.writeUTF(w);
                        }
                    }
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e); // a byte array does not fail
        }
        return bytes.toByteArray();
    }

    /** The plan as the router dispatches by it. */
    public ExpertPlacement placement() {
        return new ExpertPlacement(epoch, numExperts, replicas);
    }

    /** Every worker named, in first-seen order. */
    Set<String> workers() {
        Set<String> out = new LinkedHashSet<>();
        for (String[][] layer : replicas) {
            if (layer != null) {
                for (String[] r : layer) {
                    out.addAll(Arrays.asList(r));
                }
            }
        }
        return out;
    }

    /** True when this plan has the layers and experts of {@code p} (routers of one model). */
    boolean sameShape(ExpertPlacement p) {
        return numExperts == p.numExperts() && replicas.length == p.numLayers()
                && Arrays.equals(placement().moeLayers(), p.moeLayers());
    }

    @Override
    public String toString() {
        return "SharedPlan{epoch " + epoch + ", window " + window + "}";
    }
}
