package io.expertmesh.router.telemetry;

import io.expertmesh.kvcache.KvStoreStats;
import io.expertmesh.router.engine.Engine;
import io.expertmesh.router.engine.EngineStatus;
import io.expertmesh.router.kv.KvCacheStats;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.Meter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The router's serving metrics. Latencies are histograms in seconds (buckets below); token and request counts
 * are counters recorded per request; queue, KV cache and prefix-cache state are read from the engine's status
 * snapshot when metrics are collected (nothing on the step loop).
 */
public final class RouterMetrics implements AutoCloseable {
    static final AttributeKey<String> FINISH_REASON = AttributeKey.stringKey("finish_reason");
    static final AttributeKey<String> STATE = AttributeKey.stringKey("state");

    // vLLM's boundaries, extended down to 1 ms because small models answer in milliseconds on a CPU.
    static final List<Double> TTFT_BUCKETS = List.of(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
            0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0);
    static final List<Double> ITL_BUCKETS = List.of(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
            0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0);
    static final List<Double> E2E_BUCKETS = List.of(0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0,
            15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0);

    final DoubleHistogram ttft;
    final DoubleHistogram itl;
    final DoubleHistogram e2e;
    final DoubleHistogram queueTime;
    final LongCounter promptTokens;
    final LongCounter cachedPromptTokens;
    final LongCounter generationTokens;
    private final LongCounter requests;
    private final Map<String, Attributes> reasonAttributes = new ConcurrentHashMap<>();
    private final List<AutoCloseable> observers = new ArrayList<>();
    private volatile Engine engine;

    RouterMetrics(Meter meter) {
        ttft = meter.histogramBuilder("expertmesh.router.time_to_first_token").setUnit("s")
                .setDescription("Request arrival to its first generated token")
                .setExplicitBucketBoundariesAdvice(TTFT_BUCKETS).build();
        itl = meter.histogramBuilder("expertmesh.router.inter_token_latency").setUnit("s")
                .setDescription("Time between two consecutive tokens of one request")
                .setExplicitBucketBoundariesAdvice(ITL_BUCKETS).build();
        e2e = meter.histogramBuilder("expertmesh.router.e2e_request_latency").setUnit("s")
                .setDescription("Request arrival to its end").setExplicitBucketBoundariesAdvice(E2E_BUCKETS).build();
        queueTime = meter.histogramBuilder("expertmesh.router.queue_time").setUnit("s")
                .setDescription("Request arrival to its first scheduled step")
                .setExplicitBucketBoundariesAdvice(TTFT_BUCKETS).build();
        promptTokens = meter.counterBuilder("expertmesh.router.prompt_tokens").setUnit("{token}")
                .setDescription("Prompt tokens of requests whose prefill finished").build();
        cachedPromptTokens = meter.counterBuilder("expertmesh.router.cached_prompt_tokens").setUnit("{token}")
                .setDescription("Prompt tokens served from the local or distributed prefix cache").build();
        generationTokens = meter.counterBuilder("expertmesh.router.generation_tokens").setUnit("{token}")
                .setDescription("Tokens generated").build();
        requests = meter.counterBuilder("expertmesh.router.requests").setUnit("{request}")
                .setDescription("Finished requests by finish reason (stop, length, cancelled, error)").build();

        observers.add(meter.gaugeBuilder("expertmesh.router.requests.running").ofLongs().setUnit("{request}")
                .setDescription("Sequences being generated").buildWithCallback(m -> status(s -> m.record(s.running()))));
        observers.add(meter.gaugeBuilder("expertmesh.router.requests.waiting").ofLongs().setUnit("{request}")
                .setDescription("Requests queued, not yet scheduled (preempted ones included)")
                .buildWithCallback(m -> status(s -> m.record(s.waiting()))));
        observers.add(meter.gaugeBuilder("expertmesh.router.kv.blocks").ofLongs().setUnit("{block}")
                .setDescription("Paged KV cache blocks, state=used|free (free includes evictable cached blocks)")
                .buildWithCallback(m -> status(s -> {
                    KvCacheStats kv = s.kv();
                    m.record(kv.totalBlocks() - kv.freeBlocks(), Attributes.of(STATE, "used"));
                    m.record(kv.freeBlocks(), Attributes.of(STATE, "free"));
                })));
        observers.add(meter.gaugeBuilder("expertmesh.router.prefix_cache.hit_rate").setUnit("1")
                .setDescription("Local prefix cache: hit tokens / looked-up prompt tokens, since start")
                .buildWithCallback(m -> status(s -> m.record(s.kv().prefixHitRate()))));
        observers.add(meter.counterBuilder("expertmesh.router.prefix_cache.queried_tokens").setUnit("{token}")
                .setDescription("Local prefix cache: prompt tokens looked up")
                .buildWithCallback(m -> status(s -> m.record(s.kv().prefixQueryTokens()))));
        observers.add(meter.counterBuilder("expertmesh.router.prefix_cache.hit_tokens").setUnit("{token}")
                .setDescription("Local prefix cache: prompt tokens found")
                .buildWithCallback(m -> status(s -> m.record(s.kv().prefixHitTokens()))));
        observers.add(meter.gaugeBuilder("expertmesh.router.kv_store.hit_rate").setUnit("1")
                .setDescription("Distributed KV tier: blocks found / blocks looked up, since start (absent when "
                        + "the tier is off)")
                .buildWithCallback(m -> store(st -> m.record(st.lookupBlocks() == 0 ? 0
                        : (double) st.hitBlocks() / st.lookupBlocks()))));
        observers.add(meter.counterBuilder("expertmesh.router.kv_store.lookup_blocks").setUnit("{block}")
                .setDescription("Distributed KV tier: blocks looked up")
                .buildWithCallback(m -> store(st -> m.record(st.lookupBlocks()))));
        observers.add(meter.counterBuilder("expertmesh.router.kv_store.hit_blocks").setUnit("{block}")
                .setDescription("Distributed KV tier: blocks found")
                .buildWithCallback(m -> store(st -> m.record(st.hitBlocks()))));
        observers.add(meter.counterBuilder("expertmesh.router.kv_store.hit_tokens").setUnit("{token}")
                .setDescription("Distributed KV tier: tokens covered by the blocks found")
                .buildWithCallback(m -> store(st -> m.record(st.hitTokens()))));
    }

    /** Starts reporting the engine's state (before this the state gauges report nothing). */
    void bind(Engine e) {
        this.engine = e;
    }

    void finished(String reason) {
        requests.add(1, reasonAttributes.computeIfAbsent(reason, r -> Attributes.of(FINISH_REASON, r)));
    }

    private void status(java.util.function.Consumer<EngineStatus> use) {
        Engine e = engine;
        if (e != null) {
            use.accept(e.status());
        }
    }

    private void store(java.util.function.Consumer<KvStoreStats> use) {
        Engine e = engine;
        KvStoreStats st = e == null ? null : e.kvStoreStats();
        if (st != null) {
            use.accept(st);
        }
    }

    @Override
    public void close() {
        for (AutoCloseable o : observers) {
            try {
                o.close();
            } catch (Exception ignored) {
                // the SDK's observable instruments do not throw on close
            }
        }
    }
}
