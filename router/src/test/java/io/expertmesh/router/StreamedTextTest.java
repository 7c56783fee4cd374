package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.proto.inference.v1.DetokenizeRequest;
import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.router.engine.EngineConfig;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The rule clients may rely on: a stream's texts concatenated equal Detokenize (skip_special_tokens) of its token
 * ids, less a final stop token; the bytes of a character left incomplete at the end come out as U+FFFD, as
 * Detokenize shows them. A random model with the real DeepSeek-V3 tokenizer makes plenty of split characters.
 */
class StreamedTextTest {
    @TempDir
    static Path tmp;

    @Test
    void generate_64SampledCompletions_streamedTextEqualsDetokenizeOfStreamedIds() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        try (TestRouter r = TestRouter.started(model, new EngineConfig(16, 64L << 20, 512, 16, 64, true))) {
            for (int i = 0; i < 64; i++) {
                TestRouter.Result res = r.generate(GenerateRequest.newBuilder().setText("Tell me about Kyoto")
                        .setMaxTokens(1 + i % 7)
                        .setSampling(SamplingParams.newBuilder().setTemperature(1.5f).setSeed(i)).build());
                List<Integer> ids = res.ids();
                if (res.finished().getReason() == FinishReason.FINISH_REASON_STOP
                        && res.finished().hasStopTokenId()) {
                    ids = ids.subList(0, ids.size() - 1);
                }
                String detokenized = r.blocking.detokenize(DetokenizeRequest.newBuilder().addAllIds(ids)
                        .setSkipSpecialTokens(true).build()).getText();
                assertEquals(detokenized, res.text(), "completion " + i + ": " + res.ids());
            }
        }
    }
}
