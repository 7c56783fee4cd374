package io.expertmesh.gpucheck.bench;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBatch;
import io.expertmesh.core.model.KvCache;
import io.expertmesh.core.synthetic.SyntheticModels;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.CudaProbe;
import io.expertmesh.cuda.DeviceCounts;
import io.expertmesh.cuda.forward.CountingOps;
import io.expertmesh.cuda.forward.CudaOps;
import io.expertmesh.cuda.forward.DeviceForward;
import io.expertmesh.cuda.forward.DeviceKvCache;
import io.expertmesh.cuda.forward.DeviceOps;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Decode throughput of the whole device-resident forward pass (what {@code serve --device cuda} runs per step) on
 * the benchmark model (hidden 1024, 8 layers, 16 experts top-4; written on first use): for each batch size B,
 * B sequences are prefilled to {@code context} tokens, then timed over {@code steps} decode steps of one token
 * per sequence, logits downloaded as a server would. Prints tokens/s and the weight bytes read per second
 * (each step reads the attention, dense and shared weights once and, per token, its top-k experts' weights,
 * bounded by all of them), and per step the kernel launches, copies and waits {@code CudaDevice} counted. Usage: {@code DeviceForwardBench [CACHE_DIR]}; exit 3 without a GPU.
 */
public final class DeviceForwardBench {
    private DeviceForwardBench() {
    }

    public static void main(String[] args) throws Exception {
        CudaProbe probe = CudaDevice.probe();
        System.out.println("device: " + probe.describe());
        if (!probe.available()) {
            System.exit(3);
        }
        Path root = args.length > 0 ? Path.of(args[0]) : Files.createTempDirectory("expertmesh-bench");
        Path dir = SyntheticModels.ensureBenchModel(root);
        try (CudaOps ops = new CudaOps(CudaDevice.get())) {
            run(dir, ops, List.of(1, 8, 32, 64), 512, 32, System.out);
        }
    }

    /** The device's own counts when the ops run on it ({@link CudaOps}); the counter's for {@link CountingOps}. */
    private static DeviceCounts counts(DeviceOps ops) {
        return switch (ops) {
            case CudaOps ignored -> CudaDevice.get().counts();
            case CountingOps c -> c.counts();
            default -> DeviceCounts.ZERO;
        };
    }

    /** The measured rates, one per batch size (tokens/s). */
    public static List<Double> run(Path modelDir, DeviceOps ops, List<Integer> batches, int context, int steps,
                                   PrintStream out) throws Exception {
        List<Double> rates = new ArrayList<>();
        try (ComputePool pool = ComputePool.create(Runtime.getRuntime().availableProcessors());
             LoadedModel model = LoadedModel.open(modelDir, new VectorKernels(pool), (a, b) -> { })) {
            ModelConfig c = model.config();
            int maxBatch = batches.stream().max(Integer::compare).orElse(1);
            int block = 16;
            int capacity = context + steps + 2;  // the prompt, two warm-up steps, the timed steps
            int perSeq = DeviceForward.blocksFor(capacity, block);
            try (DeviceForward dev = new DeviceForward(model.transformer(), ops, maxBatch * perSeq, block, null)) {
                out.println(dev.describe());
                DeviceForward.Runner r = dev.newRunner();
                Random rnd = new Random(1);
                for (int b : batches) {
                    List<DeviceKvCache> caches = new ArrayList<>();
                    int[] last = new int[b];
                    float[] logits = new float[b * c.vocabSize()];
                    for (int s = 0; s < b; s++) {
                        DeviceKvCache cache = dev.newCache(capacity);
                        caches.add(cache);
                        int[] prompt = rnd.ints(context, 2, c.vocabSize()).toArray();
                        r.forward(ForwardBatch.ofSequence(prompt, 0, cache, context - 1), logits);
                        last[s] = prompt[context - 1];
                    }
                    int[] rows = new int[b];
                    java.util.Arrays.setAll(rows, i -> i);
                    long start = 0;
                    DeviceCounts counted = DeviceCounts.ZERO;
                    for (int step = -2; step < steps; step++) {  // two untimed warm-up steps
                        if (step == 0) {
                            start = System.nanoTime();
                            counted = counts(ops);
                        }
                        int[] pos1 = new int[b];
                        KvCache[] cs = new KvCache[b];
                        for (int s = 0; s < b; s++) {
                            pos1[s] = context + step + 2;
                            cs[s] = caches.get(s);
                        }
                        r.forward(new ForwardBatch(last.clone(), pos1, cs, rows), logits);
                    }
                    double secs = (System.nanoTime() - start) / 1e9;
                    DeviceCounts perRun = counts(ops).minus(counted);
                    double tps = (double) b * steps / secs;
                    rates.add(tps);
                    out.printf("device forward decode, batch %3d, context %d: %8.1f tokens/s (%.2f ms per step)%n",
                            b, context, tps, secs * 1e3 / steps);
                    out.printf("  per step: %.1f launches, %.1f copies to the device, %.1f to the host, %.1f waits%n",
                            (double) perRun.launches() / steps, (double) perRun.copiesToDevice() / steps,
                            (double) perRun.copiesToHost() / steps, (double) perRun.syncs() / steps);
                    caches.forEach(DeviceKvCache::close);
                }
            }
        }
        return rates;
    }
}
