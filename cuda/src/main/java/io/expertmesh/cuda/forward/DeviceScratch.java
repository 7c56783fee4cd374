package io.expertmesh.cuda.forward;

import java.util.EnumMap;
import java.util.Map;

/**
 * The working tensors of one forward runner, one per named slot, grown geometrically and never shrunk: a step
 * allocates device memory only when its batch is the largest yet. Not thread-safe (one runner, one thread).
 */
final class DeviceScratch implements AutoCloseable {
    enum Slot {
        IDS, COS, SIN, SEQ_LENS, SLOTS, BLOCK_TABLE, X, XN, ATTN_OUT, FFN_OUT, Q, Q_A, KV, K, V, Q_FULL, O_LATENT,
        HEADS_OUT, GATE_LOGITS, TOPK_IDS, TOPK_WEIGHTS, ROUTE_IDX, ROUTE_W, ROUTE_OFFSETS, ROUTE_SLOT, EXPERT_IN, EXPERT_H1, EXPERT_H2,
        EXPERT_OUT, SHARED_OUT, SHARED_GATE, LOGIT_ROWS, LOGIT_X, LOGITS, KV_ROWS
    }

    private final DeviceOps ops;
    private final Map<Slot, DeviceTensor> tensors = new EnumMap<>(Slot.class);

    DeviceScratch(DeviceOps ops) {
        this.ops = ops;
    }

    DeviceTensor f32(Slot slot, long n) {
        return get(slot, DeviceTensor.Kind.F32, n);
    }

    DeviceTensor i32(Slot slot, long n) {
        return get(slot, DeviceTensor.Kind.I32, n);
    }

    private DeviceTensor get(Slot slot, DeviceTensor.Kind kind, long n) {
        DeviceTensor t = tensors.get(slot);
        if (t != null && t.length() >= n) {
            return t;
        }
        long size = Math.max(n, t == null ? 0 : t.length() * 2);
        if (t != null) {
            t.close();
        }
        DeviceTensor fresh = ops.allocate(kind, Math.max(1, size));
        tensors.put(slot, fresh);
        return fresh;
    }

    @Override
    public void close() {
        tensors.values().forEach(DeviceTensor::close);
        tensors.clear();
    }
}
