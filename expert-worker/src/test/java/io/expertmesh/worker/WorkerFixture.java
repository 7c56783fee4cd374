package io.expertmesh.worker;

import com.google.protobuf.ByteString;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.core.model.Mlp;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.core.safetensors.Checkpoint;
import io.expertmesh.core.tensor.Bf16;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/** The tiny DeepSeek-V3 fixture (8 routed experts, hidden 64, MoE layers 1 and 2) and a local reference. */
final class WorkerFixture {
    static final Path MODEL = Path.of("../core/src/test/resources/fixtures/deepseek-v3-tiny/f32");
    static final int HIDDEN = 64;
    static final int EXPERTS = 8;
    static final int INTER = 32;

    private WorkerFixture() {
    }

    static Kernels kernels() {
        return new VectorKernels(ComputePool.create(2));
    }

    /** A random request: every token gets 1..3 distinct experts (from {@code allowed}) with random weights. */
    static RunExpertsRequest randomRequest(Random rnd, int layer, int tokens, HiddenEncoding enc, int[] allowed) {
        float[] x = new float[tokens * HIDDEN];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        RunExpertsRequest.Builder b = RunExpertsRequest.newBuilder().setLayer(layer).setHiddenSize(HIDDEN)
                .setNumTokens(tokens).setEncoding(enc).setHiddenStates(WorkerFixture.encode(x, enc));
        for (int t = 0; t < tokens; t++) {
            int[] pick = allowed.clone();
            for (int i = pick.length - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int s = pick[i];
                pick[i] = pick[j];
                pick[j] = s;
            }
            int k = 1 + rnd.nextInt(Math.min(3, pick.length));
            b.addAssignmentsPerToken(k);
            for (int i = 0; i < k; i++) {
                b.addExpertIds(pick[i]).addWeights(rnd.nextFloat() * 2.5f);
            }
        }
        return b.build();
    }

    /**
     * The request computed locally, token by token, with core's {@link Mlp#forward} and {@link Kernels#axpy}:
     * each token's experts in ascending id, added from zero; inputs decoded from the request's bytes (so BF16
     * inputs are the BF16-rounded values).
     */
    static float[] reference(RunExpertsRequest req, Kernels kernels) {
        try (Checkpoint ckpt = Checkpoint.open(MODEL)) {
            StepContext ctx = StepContext.standalone(kernels);
            int tokens = req.getNumTokens();
            float[] x = WorkerFixture.decode(req.getHiddenStates(), req.getEncoding(), tokens * HIDDEN);
            float[] out = new float[tokens * HIDDEN];
            int at = 0;
            for (int t = 0; t < tokens; t++) {
                int k = req.getAssignmentsPerToken(t);
                Integer[] order = new Integer[k];
                for (int i = 0; i < k; i++) {
                    order[i] = at + i;
                }
                Arrays.sort(order, (a, c) -> Integer.compare(req.getExpertIds(a), req.getExpertIds(c)));
                float[] xt = Arrays.copyOfRange(x, t * HIDDEN, (t + 1) * HIDDEN);
                float[] acc = new float[HIDDEN];
                for (int i : order) {
                    Mlp m = mlp(ckpt, req.getLayer(), req.getExpertIds(i));
                    float[] res = new float[HIDDEN];
                    m.forward(xt, res, 1, ctx);
                    kernels.axpy(req.getWeights(i), res, 0, acc, 0, HIDDEN);
                }
                System.arraycopy(acc, 0, out, t * HIDDEN, HIDDEN);
                at += k;
            }
            if (req.getEncoding() == HiddenEncoding.HIDDEN_ENCODING_BF16) {
                for (int i = 0; i < out.length; i++) {
                    out[i] = Bf16.round(out[i]);
                }
            }
            return out;
        }
    }

    static Mlp mlp(Checkpoint ckpt, int layer, int e) {
        String p = "model.layers." + layer + ".mlp.experts." + e + ".";
        return new Mlp(ckpt.matrix(p + "gate_proj.weight", INTER, HIDDEN), ckpt.matrix(p + "up_proj.weight", INTER,
                HIDDEN), ckpt.matrix(p + "down_proj.weight", HIDDEN, INTER));
    }

    /** Little-endian values of {@code encoding} to floats. */
    static float[] decode(ByteString bytes, HiddenEncoding encoding, int count) {
        float[] x = new float[count];
        ExpertServiceImpl.codec(encoding).decode(bytes.asReadOnlyByteBuffer(), x, 0, count);
        return x;
    }

    /** Floats to little-endian values of {@code encoding} (BF16: rounded to nearest even). */
    static ByteString encode(float[] x, HiddenEncoding encoding) {
        return ByteString.copyFrom(ExpertServiceImpl.codec(encoding).encode(x, 0, x.length));
    }
}
