package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GetStatusRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.router.engine.EngineConfig;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A request sharing a 512-token prefix with an earlier one reuses its KV blocks: same output, faster start. */
class PrefixCacheTest {
    @TempDir
    Path tmp;

    static GenerateRequest request(int[] prefix, int... suffix) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (int t : prefix) {
            ids.addIds(t);
        }
        for (int t : suffix) {
            ids.addIds(t);
        }
        return GenerateRequest.newBuilder().setTokenIds(ids).setMaxTokens(8).setIgnoreEos(true).setLogprobs(true)
                .setSampling(SamplingParams.newBuilder().setTemperature(0.7f).setSeed(42)).build();
    }

    @Test
    void generate_sharedPrefix_reportsCachedTokensSameOutputLowerTtft() throws Exception {
        Path model = TestModels.withTokenizer(tmp.resolve("model"));
        Random rnd = new Random(3);
        int[] prefix = new int[512];
        prefix[0] = 0;
        for (int i = 1; i < prefix.length; i++) {
            prefix[i] = 2 + rnd.nextInt(120000);
        }
        GenerateRequest first = request(prefix, 11, 12, 13);
        GenerateRequest second = request(prefix, 21, 22, 23, 24);

        TestRouter.Result cold;
        double coldTtft = Double.MAX_VALUE;
        try (TestRouter r = TestRouter.started(model, new EngineConfig(16, 64L << 20, 1024, 8, 8, false))) {
            r.generate(second); // warm up the JIT, not the cache (prefix caching is off)
            cold = r.generate(second);
            coldTtft = Math.min(coldTtft, cold.finished().getUsage().getTimeToFirstTokenMs());
            assertEquals(0, cold.finished().getUsage().getCachedPromptTokens());
        }
        try (TestRouter r = TestRouter.started(model, new EngineConfig(16, 64L << 20, 1024, 8, 8, true))) {
            r.generate(request(new int[]{0, 5, 6}, 7)); // JIT warm-up on an unrelated prompt
            r.generate(first);
            TestRouter.Result warm = r.generate(second);
            int cached = warm.finished().getUsage().getCachedPromptTokens();
            assertTrue(cached >= 448, "cached prompt tokens " + cached);
            assertEquals(cold.tokens(), warm.tokens(), "output identical to the cold run, logprobs included");
            double warmTtft = warm.finished().getUsage().getTimeToFirstTokenMs();
            assertTrue(warmTtft < coldTtft, "TTFT with cache " + warmTtft + " ms, cold " + coldTtft + " ms");
            var status = r.blocking.getStatus(GetStatusRequest.getDefaultInstance());
            var kv = status.getKvCache();
            assertTrue(kv.getPrefixHitTokens() >= 448, kv.toString());
            assertTrue(!status.hasKvStore(), "no distributed tier section when the tier is off");
        }
    }
}
