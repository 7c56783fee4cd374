package io.expertmesh.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.ComputePool;
import io.expertmesh.core.kernel.ScalarKernels;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class DeepSeekReferenceTest {

    @Test
    void forward_f32Fixture_matchesReferenceLogits() throws Exception {
        Path dir = Path.of("src/test/resources/fixtures/deepseek-v3-tiny/f32");
        ModelConfig config = ModelConfig.load(dir);
        JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
        try (Transformer model = new ModelBuilder(config, new TinySafetensors(dir.resolve("model.safetensors")),
                new ScalarKernels(ComputePool.create(1))).build()) {
            int[] prompt = ids(ref.get("prompt_ids"));
            KvCache cache = model.newCache(64);
            float[] logits = new float[prompt.length * config.vocabSize()];
            model.forward(ForwardBatch.ofSequenceAllLogits(prompt, 0, cache), logits);
            double maxDiff = 0;
            for (int i = 0; i < prompt.length; i++) {
                JsonNode exp = ref.get("prefill").get("positions").get(i).get("logits");
                for (int v = 0; v < config.vocabSize(); v++) {
                    maxDiff = Math.max(maxDiff, Math.abs(exp.get(v).asDouble() - logits[i * config.vocabSize() + v]));
                }
            }
            System.out.println("prefill max diff " + maxDiff);
            assertEquals(0, maxDiff, 1e-3);
        }
    }

    static int[] ids(JsonNode n) {
        int[] a = new int[n.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = n.get(i).asInt();
        }
        return a;
    }
}
