package io.expertmesh.cuda.forward;

import io.expertmesh.core.model.ExpertRunner;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.tensor.Matrix;
import io.expertmesh.cuda.forward.DeviceScratch.Slot;
import io.expertmesh.cuda.forward.DeviceWeights.StackedExperts;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * An expert worker's experts in device memory: {@link ExpertRunner}s whose calls run on the device through the
 * router's grouped path ({@link DeviceMlps#routed}): one upload each of the tokens, the choices and their weights,
 * seven launches whatever the number of experts (grouping by expert on the device, one grouped launch per
 * product), one download of the sums. A layer's held experts are uploaded stacked in ascending id; when the held
 * set changes (a load or an unload) the layer's stack is uploaded again, so a rebalance costs one upload of the
 * layer's held experts and never holds two stacks at once. Calls and loads are serialised by the worker's
 * executor; this class also serialises them itself (one scratch space).
 */
public final class DeviceExperts implements ExpertRunner.Factory, AutoCloseable {
    private final DeviceOps ops;
    private final DeviceScratch scratch;
    /** Per layer: the held experts on the device, and from which Mlps (a reloaded expert is a new Mlp). */
    private final Map<Integer, Layer> layers = new HashMap<>();
    private long bytes;
    // Host staging of one call's choices, padded to the most choices any token has; grown, never shrunk.
    private int[] localIds = new int[0];
    private float[] paddedWeights = new float[0];
    private float[] sums = new float[0];

    /**
     * The held experts of one layer: {@code stack} holds expert {@code held[j]} at index j ({@code held}
     * ascending, so ascending index is ascending id: the order the sums are taken in); {@code localOf[id]} is that
     * index, -1 where not held.
     */
    private record Layer(Mlp[] sources, int[] held, int[] localOf, StackedExperts stack, long bytes) {
        void free() {
            if (stack != null) {
                stack.gate().close();
                stack.up().close();
                stack.down().close();
            }
        }
    }

    public DeviceExperts(DeviceOps ops) {
        this.ops = ops;
        this.scratch = new DeviceScratch(ops);
    }

    @Override
    public synchronized ExpertRunner create(int layer, Mlp[] experts, int hidden) {
        Layer old = layers.get(layer);
        Layer now = old != null && sameExperts(old.sources, experts) ? old : null;
        if (now == null) {
            if (old != null) {
                old.free();
                bytes -= old.bytes;
            }
            now = upload(experts);
            bytes += now.bytes;
            layers.put(layer, now);
        }
        Layer l = now;
        return (xn, tokens, offsets, ids, w, out, ctx) -> run(layer, l, hidden, xn, tokens, offsets, ids, w, out);
    }

    private static boolean sameExperts(Mlp[] a, Mlp[] b) {
        if (a.length != b.length) {
            return false;
        }
        for (int e = 0; e < a.length; e++) {
            if (a[e] != b[e]) {
                return false;
            }
        }
        return true;
    }

    private Layer upload(Mlp[] experts) {
        int[] held = java.util.stream.IntStream.range(0, experts.length).filter(e -> experts[e] != null).toArray();
        int[] localOf = new int[experts.length];
        Arrays.fill(localOf, -1);
        for (int j = 0; j < held.length; j++) {
            localOf[held[j]] = j;
        }
        if (held.length == 0) {
            return new Layer(experts.clone(), held, localOf, null, 0);
        }
        Matrix[] gates = new Matrix[held.length];
        Matrix[] ups = new Matrix[held.length];
        Matrix[] downs = new Matrix[held.length];
        long size = 0;
        for (int j = 0; j < held.length; j++) {
            Mlp m = experts[held[j]];
            gates[j] = m.gate();
            ups[j] = m.up();
            downs[j] = m.down();
            size += m.byteSize();
        }
        DeviceTensor gate = ops.uploadStacked(gates);
        DeviceTensor up = null;
        try {
            up = ops.uploadStacked(ups);
            DeviceTensor down = ops.uploadStacked(downs);
            StackedExperts stack = new StackedExperts(gate, up, down, held.length,
                    experts[held[0]].intermediate());
            return new Layer(experts.clone(), held, localOf, stack, size);
        } catch (RuntimeException e) {
            gate.close();
            if (up != null) {
                up.close();
            }
            throw e;
        }
    }

    private synchronized void run(int index, Layer layer, int hidden, float[] xn, int tokens, int[] offsets,
                                  int[] ids, float[] weights, float[] out) {
        if (layers.get(index) != layer) {
            // Its stack was freed when the layer's experts changed (or on close): a runner made before a load or
            // an unload must not run after it.
            throw new IllegalStateException("layer " + index + "'s experts changed since this runner was made");
        }
        if (tokens == 0) {
            return;
        }
        if (offsets.length <= tokens || offsets[0] != 0) {
            throw new IllegalArgumentException("offsets must hold tokens + 1 entries starting at 0");
        }
        int k = 0;
        for (int t = 0; t < tokens; t++) {
            if (offsets[t + 1] < offsets[t]) {
                throw new IllegalArgumentException("offsets must not decrease (token " + t + ")");
            }
            k = Math.max(k, offsets[t + 1] - offsets[t]);
        }
        if (k == 0) {
            return;
        }
        // Each token's choices as local indices, padded with -1 (left out on the device) to k per token.
        int pairs = tokens * k;
        if (localIds.length < pairs) {
            localIds = new int[pairs];
            paddedWeights = new float[pairs];
        }
        Arrays.fill(localIds, 0, pairs, -1);
        Arrays.fill(paddedWeights, 0, pairs, 0f);
        for (int t = 0; t < tokens; t++) {
            for (int i = offsets[t]; i < offsets[t + 1]; i++) {
                int e = ids[i];
                int local = e >= 0 && e < layer.localOf.length ? layer.localOf[e] : -1;
                if (local < 0) {
                    throw new IllegalArgumentException("expert " + e + " is not held here");
                }
                for (int j = offsets[t]; j < i; j++) {
                    if (ids[j] == e) {
                        throw new IllegalArgumentException("token " + t + " names expert " + e + " twice");
                    }
                }
                int p = t * k + i - offsets[t];
                localIds[p] = local;
                paddedWeights[p] = weights[i];
            }
        }
        int size = tokens * hidden;
        DeviceTensor x = scratch.f32(Slot.X, size);
        DeviceTensor idsD = scratch.i32(Slot.TOPK_IDS, pairs);
        DeviceTensor wD = scratch.f32(Slot.TOPK_WEIGHTS, pairs);
        DeviceTensor sum = scratch.f32(Slot.FFN_OUT, size);
        ops.copyIn(xn, 0, x, 0, size);
        ops.copyIn(localIds, idsD, pairs);
        ops.copyIn(paddedWeights, 0, wD, 0, pairs);
        DeviceMlps.routed(ops, scratch, layer.stack, x, idsD, wD, sum, tokens, k, offsets[tokens], hidden);
        if (sums.length < size) {
            sums = new float[size];
        }
        ops.copyOut(sum, 0, sums, 0, size);
        for (int i = 0; i < size; i++) {
            out[i] += sums[i];
        }
    }

    /** The experts run on the device, whatever the CPU kernels. */
    @Override
    public String computeKind(io.expertmesh.core.kernel.Kernels kernels) {
        return "cuda, " + ops.name();
    }

    /** Device memory the uploaded experts take, for the start-up log. */
    public synchronized String describe() {
        int experts = layers.values().stream().mapToInt(l -> l.held.length).sum();
        return experts + " experts on " + ops.name() + ", " + (bytes >> 20) + " MiB";
    }

    @Override
    public synchronized void close() {
        layers.values().forEach(Layer::free);
        layers.clear();
        scratch.close();
    }
}
