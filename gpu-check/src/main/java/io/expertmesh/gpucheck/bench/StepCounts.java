package io.expertmesh.gpucheck.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.cuda.DeviceCounts;
import io.expertmesh.cuda.forward.CountingOps;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.cuda.forward.DeviceKvCache;
import io.expertmesh.cuda.forward.HostOps;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The host-side work of one decode step of the device forward pass: kernel launches, copies and waits, counted
 * by {@link CountingOps} around {@link HostOps} (so it runs without a GPU; on a GPU, {@code DeviceForwardBench}
 * prints {@code CudaDevice}'s own count of the same step). Two topologies, at narrow widths (the counts depend on
 * layers, experts, top-k and the attention path, not on widths): the benchmark model's (8 layers, the first
 * dense, 16 experts top-4, 1 shared) and DeepSeek-V3's (61 layers, the first 3 dense, 256 experts top-8 in 8
 * groups, 1 shared, latent 512 + rope 64: the fast MLA path). Usage: {@code StepCounts [BATCH...]} (default 1 64).
 */
public final class StepCounts {
    private StepCounts() {
    }

    /** The batch sizes given on the command line; none: 1 and 64. */
    static List<Integer> batches(String[] args) {
        List<Integer> batches = new ArrayList<>();
        for (String a : args) {
            batches.add(Integer.parseInt(a));
        }
        return batches.isEmpty() ? List.of(1, 64) : batches;
    }

    public static void main(String[] args) throws Exception {
        List<Integer> batches = batches(args);
        for (String shape : List.of("bench", "v3")) {
            Path dir = Files.createTempDirectory("expertmesh-counts");
            SyntheticModels.writeModel(config(shape), 5, dir);
            for (int b : batches) {
                System.out.printf("step counts, %-5s topology, decode batch %3d: %s%n", shape, b, decodeStep(dir, b));
            }
        }
    }

    /** The benchmark model's or V3's topology ({@code "bench"} or {@code "v3"}) at narrow widths. */
    public static ObjectNode config(String shape) {
        ObjectNode c = shape.equals("v3") ? SyntheticModels.v3AttentionConfig() : SyntheticModels.benchConfig();
        c.put("hidden_size", 32).put("intermediate_size", 48).put("moe_intermediate_size", 16).put("vocab_size", 64)
                .put("q_lora_rank", 32).put("num_attention_heads", 2).put("num_key_value_heads", 2)
                .put("qk_nope_head_dim", 16).put("v_head_dim", 16).put("max_position_embeddings", 256);
        if (shape.equals("v3")) {
            c.put("num_hidden_layers", 61).put("first_k_dense_replace", 3).put("n_routed_experts", 256)
                    .put("num_experts_per_tok", 8).put("n_group", 8).put("topk_group", 4);
        } else {
            c.put("kv_lora_rank", 32).put("qk_rope_head_dim", 8);
        }
        return c;
    }

    /** The counts of one decode step of {@code batch} sequences (each with a 3-token prompt already in its cache). */
    public static DeviceCounts decodeStep(Path modelDir, int batch) throws Exception {
        try (ComputePool pool = ComputePool.create(1);
             LoadedModel model = LoadedModel.open(modelDir, new VectorKernels(pool), (a, b) -> { })) {
            CountingOps ops = new CountingOps(new HostOps(), true);
            int block = 16;
            try (DeviceForward dev = new DeviceForward(model.transformer(), ops, batch * 2, block, null)) {
                DeviceForward.Runner r = dev.newRunner();
                int vocab = model.config().vocabSize();
                float[] logits = new float[batch * vocab];
                KvCache[] caches = new KvCache[batch];
                int[] last = new int[batch];
                int[] pos = new int[batch];
                int[] rows = new int[batch];
                for (int s = 0; s < batch; s++) {
                    caches[s] = dev.newCache(block);
                    int[] prompt = {1 + s % (vocab - 1), 2, 3};
                    r.forward(ForwardBatch.ofSequence(prompt, 0, caches[s], 2), logits);
                    last[s] = 4;
                    pos[s] = 3;
                    rows[s] = s;
                }
                DeviceCounts before = ops.counts();
                r.forward(new ForwardBatch(last, pos, caches, rows), logits);
                DeviceCounts step = ops.counts().minus(before);
                for (KvCache c : caches) {
                    ((DeviceKvCache) c).close();
                }
                return step;
            }
        }
    }
}
