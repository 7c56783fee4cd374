package io.expertmesh.cuda.forward;

import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.cuda.forward.DeviceScratch.Slot;
import io.expertmesh.cuda.forward.DeviceWeights.MlpWeights;
import java.util.HashMap;
import java.util.Map;

/**
 * An expert worker's experts in device memory: {@link ExpertRunner}s whose weights are uploaded when an expert is
 * loaded and freed when it is unloaded, and whose calls run on the device (one upload of the tokens, the experts
 * grouped by the host ({@link DeviceMlps#grouped}, one product per active expert), one download of the sums). Calls and loads are serialised by the
 * worker's executor; this class also serialises them itself (one scratch space).
 */
public final class DeviceExperts implements ExpertRunner.Factory, AutoCloseable {
    private final DeviceOps ops;
    private final DeviceScratch scratch;
    /** Per layer, per expert id: what is uploaded, and from which Mlp (a reloaded expert is a new Mlp). */
    private final Map<Integer, Uploaded[]> layers = new HashMap<>();
    private long bytes;

    private record Uploaded(Mlp source, MlpWeights weights, long bytes) {
        void free() {
            weights.gate().close();
            weights.up().close();
            weights.down().close();
        }
    }

    public DeviceExperts(DeviceOps ops) {
        this.ops = ops;
        this.scratch = new DeviceScratch(ops);
    }

    @Override
    public synchronized ExpertRunner create(int layer, Mlp[] experts, int hidden) {
        Uploaded[] old = layers.getOrDefault(layer, new Uploaded[experts.length]);
        Uploaded[] now = new Uploaded[experts.length];
        MlpWeights[] weights = new MlpWeights[experts.length];
        for (int e = 0; e < experts.length; e++) {
            Uploaded prev = e < old.length ? old[e] : null;
            if (prev != null && prev.source == experts[e]) {
                now[e] = prev;
            } else {
                if (prev != null) {
                    prev.free();
                    bytes -= prev.bytes;
                }
                if (experts[e] != null) {
                    Mlp m = experts[e];
                    now[e] = new Uploaded(m, new MlpWeights(ops.upload(m.gate()), ops.upload(m.up()),
                            ops.upload(m.down()), m.intermediate()), m.byteSize());
                    bytes += m.byteSize();
                }
            }
            weights[e] = now[e] == null ? null : now[e].weights;
        }
        layers.put(layer, now);
        return (xn, tokens, offsets, ids, w, out, ctx) -> run(weights, hidden, xn, tokens, offsets, ids, w, out);
    }

    private synchronized void run(MlpWeights[] experts, int hidden, float[] xn, int tokens, int[] offsets,
                                  int[] ids, float[] weights, float[] out) {
        if (tokens == 0) {
            return;
        }
        if (offsets.length <= tokens || offsets[0] != 0) {
            throw new IllegalArgumentException("offsets must hold tokens + 1 entries starting at 0");
        }
        int n = offsets[tokens];
        int[] tokenOf = new int[n];
        for (int t = 0; t < tokens; t++) {
            if (offsets[t + 1] < offsets[t]) {
                throw new IllegalArgumentException("offsets must not decrease (token " + t + ")");
            }
            for (int i = offsets[t]; i < offsets[t + 1]; i++) {
                tokenOf[i] = t;
            }
        }
        int size = tokens * hidden;
        DeviceTensor x = scratch.f32(Slot.X, size);
        DeviceTensor sum = scratch.f32(Slot.FFN_OUT, size);
        ops.copyIn(xn, 0, x, 0, size);
        ops.zero(sum, size);
        DeviceMlps.grouped(ops, scratch, experts, x, sum, n, tokenOf, ids, weights, hidden);
        float[] result = new float[size];
        ops.copyOut(sum, 0, result, 0, size);
        for (int i = 0; i < size; i++) {
            out[i] += result[i];
        }
    }

    /** Device memory the uploaded experts take, for the start-up log. */
    public synchronized String describe() {
        int experts = layers.values().stream().mapToInt(a -> (int) java.util.Arrays.stream(a)
                .filter(java.util.Objects::nonNull).count()).sum();
        return experts + " experts on " + ops.name() + ", " + (bytes >> 20) + " MiB";
    }

    @Override
    public synchronized void close() {
        layers.values().forEach(a -> {
            for (Uploaded u : a) {
                if (u != null) {
                    u.free();
                }
            }
        });
        layers.clear();
        scratch.close();
    }
}
