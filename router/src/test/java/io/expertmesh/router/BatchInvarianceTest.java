package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A request's tokens and logprobs are bit-for-bit the same alone and among 31 other concurrent requests. */
class BatchInvarianceTest {
    @TempDir
    Path tmp;

    static GenerateRequest randomRequest(Random rnd, int vocab) {
        int len = 1 + rnd.nextInt(60);
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (int i = 0; i < len; i++) {
            ids.addIds(rnd.nextInt(vocab));
        }
        return GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(4 + rnd.nextInt(30)).setIgnoreEos(true)
                .setSampling(SamplingParams.newBuilder().setTemperature(rnd.nextFloat()).setSeed(rnd.nextLong())
                        .setTopP(0.5f + rnd.nextFloat() / 2))
                .setTopLogprobs(rnd.nextInt(3)).build();
    }

    @Test
    void generate_aloneAndAmong31Others_identicalTokensAndLogprobs() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        GenerateRequest target = GenerateRequest.newBuilder()
                .setTokenIds(TokenIds.newBuilder().addAllIds(List.of(0, 19923, 2058, 14, 1051, 4480, 100, 7)))
                .setMaxTokens(24).setIgnoreEos(true).setTopLogprobs(3)
                .setSampling(SamplingParams.newBuilder().setTemperature(0.8f).setSeed(7)).build();
        // Small blocks and budget: chunked prefill, many sequences per step.
        EngineConfig engine = new EngineConfig(8, 64L << 20, 96, 32, 64, true);
        List<GeneratedToken> alone;
        try (TestRouter r = TestRouter.started(model, engine)) {
            alone = r.generate(target).tokens();
        }
        assertEquals(24, alone.size());
        try (TestRouter r = TestRouter.started(model, engine);
             ExecutorService pool = Executors.newFixedThreadPool(32)) {
            Random rnd = new Random(11);
            List<CompletableFuture<TestRouter.Result>> others = new ArrayList<>();
            CompletableFuture<TestRouter.Result> mine = null;
            for (int i = 0; i < 32; i++) {
                GenerateRequest req = i == 13 ? target : randomRequest(rnd, 129280);
                CompletableFuture<TestRouter.Result> f = CompletableFuture.supplyAsync(() -> r.generate(req), pool);
                if (i == 13) {
                    mine = f;
                } else {
                    others.add(f);
                }
            }
            List<GeneratedToken> batched = mine.get(120, TimeUnit.SECONDS).tokens();
            for (CompletableFuture<TestRouter.Result> f : others) {
                f.get(120, TimeUnit.SECONDS);
            }
            assertEquals(alone, batched, "tokens, text and logprobs must not depend on the batch");
        }
    }
}
