package io.expertmesh.gpucheck;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.core.generate.Generator;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.ForwardBackend;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.cuda.CudaDevice;
import io.expertmesh.cuda.CudaProbe;
import io.expertmesh.cuda.forward.CudaOps;
import io.expertmesh.cuda.forward.DeviceForward;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Greedy generation from prompt token ids on the GPU pack (which carries no full CLI): prints the device used and
 * the generated ids. {@code cuda} runs the device-resident forward pass ({@code run}'s and {@code serve}'s GPU path). Usage: {@code GreedyRun MODEL_DIR IDS [TOKENS] [cpu|cuda|auto]}, e.g.
 * {@code GreedyRun fixtures/mixtral-tiny 1,17,42 8 auto}. Exit 2 on bad arguments or {@code cuda} without a GPU.
 */
public final class GreedyRun {
    private GreedyRun() {
    }

    public static void main(String[] args) throws Exception {
        try {
            System.exit(run(args));
        } catch (IllegalArgumentException e) {
            System.err.println("GreedyRun: " + e.getMessage());
            System.exit(2);
        }
    }

    static int run(String[] args) throws Exception {
        if (args.length < 2 || args.length > 4) {
            throw new IllegalArgumentException("usage: GreedyRun MODEL_DIR IDS [TOKENS] [cpu|cuda|auto]");
        }
        Path dir = Path.of(args[0]);
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("model directory " + dir + " does not exist");
        }
        int[] prompt;
        int tokens;
        try {
            prompt = Arrays.stream(args[1].split(",")).map(String::strip).mapToInt(Integer::parseInt).toArray();
            tokens = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("prompt ids and token count must be integers: " + e.getMessage());
        }
        String device = args.length > 3 ? args[3] : "auto";
        boolean gpu = switch (device) {
            case "cpu" -> false;
            case "auto" -> CudaDevice.available();
            case "cuda" -> {
                CudaProbe p = CudaDevice.probe();
                if (!p.available()) {
                    throw new IllegalArgumentException("--device cuda: " + p.describe());
                }
                yield true;
            }
            default -> throw new IllegalArgumentException("device must be cpu, cuda or auto, got " + device);
        };
        try (ComputePool pool = ComputePool.create(Runtime.getRuntime().availableProcessors());
             LoadedModel model = LoadedModel.open(dir, new VectorKernels(pool), (a, b) -> { })) {
            int capacity = prompt.length + tokens;
            // On the GPU: the device-resident forward pass, as `run` and `serve` use it.
            ForwardBackend.Factory factory = gpu ? DeviceForward.factory(new CudaOps(CudaDevice.get()))
                    : ForwardBackend.CPU;
            try (ForwardBackend backend = factory.create(model.transformer(), DeviceForward.blocksFor(capacity, 16),
                    16, null)) {
                System.out.println("device: " + (gpu ? backend.describe() : "cpu (" + CudaDevice.probe().describe()
                        + ")"));
                List<Integer> ids = new ArrayList<>();
                new Generator(model.transformer(), null, backend).generate(prompt,
                        SamplingParams.greedy().withMaxTokens(tokens).withIgnoreEos(true), e -> ids.add(e.tokenId()));
                System.out.println("tokens: " + ids);
            }
        }
        return 0;
    }
}
