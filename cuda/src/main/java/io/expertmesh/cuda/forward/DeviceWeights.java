package io.expertmesh.cuda.forward;

import io.expertmesh.core.model.Block;
import io.expertmesh.core.model.Gate;
import io.expertmesh.core.model.Gqa;
import io.expertmesh.core.model.LocalExperts;
import io.expertmesh.core.model.Mla;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.model.Moe;
import io.expertmesh.core.model.Transformer;
import io.expertmesh.core.tensor.Matrix;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's weights in device memory, uploaded once when the forward pass is built. A matrix named twice (tied
 * embeddings) is uploaded once. Routed experts are uploaded only when they run in this process
 * ({@link LocalExperts}); experts on expert workers stay there.
 */
final class DeviceWeights implements AutoCloseable {
    record MlaWeights(DeviceTensor qA, DeviceTensor qANorm, DeviceTensor qB, DeviceTensor kvA, DeviceTensor kvANorm,
                      DeviceTensor wUkT, DeviceTensor wUv, DeviceTensor o, Mla source) {
    }

    record GqaWeights(DeviceTensor wq, DeviceTensor wk, DeviceTensor wv, DeviceTensor wo, DeviceTensor bq,
                      DeviceTensor bk, DeviceTensor bv, DeviceTensor qNorm, DeviceTensor kNorm, Gqa source) {
    }

    record MlpWeights(DeviceTensor gate, DeviceTensor up, DeviceTensor down, int intermediate) {
    }

    /**
     * The routed experts of one layer stacked by expert id ({@code [count, intermediate, hidden]} for gate and up,
     * {@code [count, hidden, intermediate]} for down), so one grouped launch runs all of them.
     */
    record StackedExperts(DeviceTensor gate, DeviceTensor up, DeviceTensor down, int count, int intermediate) {
    }

    /** experts is null when the routed experts run elsewhere (expert workers). */
    record MoeWeights(DeviceTensor gate, DeviceTensor bias, StackedExperts experts, MlpWeights shared,
                      DeviceTensor sharedGate, Moe source) {
    }

    /** attn is MlaWeights or GqaWeights; ffn is MlpWeights or MoeWeights. */
    record LayerWeights(DeviceTensor attnNorm, Object attn, DeviceTensor ffnNorm, Object ffn) {
    }

    private record Key(Object heapBase, long address, long bytes) {
    }

    private final DeviceOps ops;
    private final Map<Key, DeviceTensor> matrices = new HashMap<>();
    private final List<DeviceTensor> owned = new ArrayList<>();
    private long bytes;
    final DeviceTensor embed;
    final DeviceTensor finalNorm;
    final DeviceTensor lmHead;
    final LayerWeights[] layers;

    DeviceWeights(Transformer model, DeviceOps ops) {
        this.ops = ops;
        this.embed = matrix(model.embed());
        this.finalNorm = vector(model.finalNorm());
        this.lmHead = matrix(model.lmHead());
        this.layers = new LayerWeights[model.config().numLayers()];
        for (int l = 0; l < layers.length; l++) {
            Block b = model.block(l);
            Object attn = switch (b.attn()) {
                case Mla m -> new MlaWeights(m.qA() == null ? null : matrix(m.qA()),
                        m.qANorm() == null ? null : vector(m.qANorm()), matrix(m.qB()), matrix(m.kvA()),
                        vector(m.kvANorm()), stacked(m.wUkT()), stacked(m.wUv()), matrix(m.o()), m);
                case Gqa g -> new GqaWeights(matrix(g.wq()), matrix(g.wk()), matrix(g.wv()), matrix(g.wo()),
                        vector(g.bq()), vector(g.bk()), vector(g.bv()), vector(g.qNorm()), vector(g.kNorm()), g);
                default -> throw new IllegalArgumentException("no device forward for attention "
                        + b.attn().getClass().getSimpleName());
            };
            Object ffn = switch (b.ffn()) {
                case Mlp m -> mlp(m);
                case Moe m -> moe(m);
                default -> throw new IllegalArgumentException("no device forward for feed-forward "
                        + b.ffn().getClass().getSimpleName());
            };
            layers[l] = new LayerWeights(vector(b.attnNorm()), attn, vector(b.ffnNorm()), ffn);
        }
    }

    private MoeWeights moe(Moe m) {
        Gate g = m.gate();
        StackedExperts experts = null;
        if (m.routed() instanceof LocalExperts local) {
            Matrix[] gates = new Matrix[local.size()];
            Matrix[] ups = new Matrix[gates.length];
            Matrix[] downs = new Matrix[gates.length];
            for (int e = 0; e < gates.length; e++) {
                Mlp x = local.expert(e);
                gates[e] = x.gate();
                ups[e] = x.up();
                downs[e] = x.down();
            }
            experts = new StackedExperts(stacked(gates), stacked(ups), stacked(downs), gates.length,
                    local.expert(0).intermediate());
        }
        return new MoeWeights(matrix(g.weight()), vector(g.bias()), experts,
                m.shared() == null ? null : mlp(m.shared()), m.sharedGate() == null ? null : matrix(m.sharedGate()),
                m);
    }

    private MlpWeights mlp(Mlp m) {
        return new MlpWeights(matrix(m.gate()), matrix(m.up()), matrix(m.down()), m.intermediate());
    }

    private DeviceTensor matrix(Matrix w) {
        MemorySegment seg = w.data();
        Key key = new Key(seg.heapBase().orElse(null), seg.address(), seg.byteSize());
        return matrices.computeIfAbsent(key, k -> track(ops.upload(w), seg.byteSize()));
    }

    private DeviceTensor stacked(Matrix[] ws) {
        return track(ops.uploadStacked(ws), (long) ws.length * ws[0].byteSize());
    }

    private DeviceTensor vector(float[] v) {
        return v == null ? null : track(ops.upload(v), 4L * v.length);
    }

    private DeviceTensor track(DeviceTensor t, long size) {
        owned.add(t);
        bytes += size;
        return t;
    }

    /** Bytes of device memory the weights take. */
    long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        owned.forEach(DeviceTensor::close);
        owned.clear();
        matrices.clear();
    }
}
