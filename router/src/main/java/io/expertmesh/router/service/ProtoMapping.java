package io.expertmesh.router.service;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.kvcache.KvStoreStats;
import io.expertmesh.proto.inference.v1.DistributedKvStatus;
import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.KvCacheStatus;
import io.expertmesh.proto.inference.v1.ServerStatus;
import io.expertmesh.proto.inference.v1.Usage;
import io.expertmesh.proto.model.v1.ModelShape;
import io.expertmesh.router.engine.Completion;
import io.expertmesh.router.engine.EngineStatus;
import io.expertmesh.router.kv.KvCacheStats;

/** Domain records to protobuf messages. */
final class ProtoMapping {
    private ProtoMapping() {
    }

    static Finished finished(Completion c) {
        Finished.Builder f = Finished.newBuilder().setReason(switch (c.reason()) {
            case STOP -> FinishReason.FINISH_REASON_STOP;
            case LENGTH -> FinishReason.FINISH_REASON_LENGTH;
            case CANCELLED -> FinishReason.FINISH_REASON_CANCELLED;
            case ERROR -> FinishReason.FINISH_REASON_ERROR;
        }).setUsage(Usage.newBuilder()
                .setPromptTokens(c.promptTokens())
                .setCompletionTokens(c.completionTokens())
                .setCachedPromptTokens(c.cachedPromptTokens())
                .setTimeToFirstTokenMs(c.ttftNanos() / 1e6)
                .setTotalMs(c.totalNanos() / 1e6)
                .setQueueMs(c.queueNanos() / 1e6));
        if (c.stopString() != null) {
            f.setStopString(c.stopString());
        }
        if (c.stopTokenId() != null) {
            f.setStopTokenId(c.stopTokenId());
        }
        return f.build();
    }

    static ModelShape shape(ModelConfig c) {
        return ModelShape.newBuilder().setArchitecture(c.architecture().hfName()).setHiddenSize(c.hiddenSize())
                .setNumLayers(c.numLayers()).setNumRoutedExperts(c.numRoutedExperts())
                .setExpertsPerToken(c.expertsPerToken()).setVocabSize(c.vocabSize()).setMaxContext(c.maxPositions())
                .build();
    }

    /**
     * @param draining whether a drain has started (the engine's own status says so only after its next step)
     * @param expertsServable false while some routed expert has no live holder (serving is then false)
     * @param store    the store's counters, or null when the distributed tier is off
     */
    static ServerStatus status(boolean draining, boolean expertsServable, EngineStatus s, KvStoreStats store) {
        KvCacheStats kv = s.kv();
        boolean d = draining || s.draining();
        ServerStatus.Builder b = ServerStatus.newBuilder().setServing(!d && expertsServable).setDraining(d).setRunning(s.running())
                .setWaiting(s.waiting()).setMaxWaiting(s.maxWaiting()).setSteps(s.steps())
                .setGeneratedTokens(s.generatedTokens()).setPreemptions(s.preemptions()).putAllFinished(s.finished())
                .setKvCache(KvCacheStatus.newBuilder().setBlockSize(kv.blockSize()).setTotalBlocks(kv.totalBlocks())
                        .setFreeBlocks(kv.freeBlocks()).setCachedBlocks(kv.cachedBlocks())
                        .setPrefixQueryTokens(kv.prefixQueryTokens()).setPrefixHitTokens(kv.prefixHitTokens()));
        if (store != null && s.remote() != null) {
            b.setKvStore(distributed(store, s.remote()));
        }
        return b.build();
    }

    static DistributedKvStatus distributed(KvStoreStats st, EngineStatus.Remote r) {
        return DistributedKvStatus.newBuilder().setLookups(st.lookups()).setHits(st.hits())
                .setHitBlocks(st.hitBlocks()).setHitTokens(st.hitTokens()).setAdoptedBlocks(r.adoptedBlocks())
                .setCorruptBlocks(st.corruptBlocks()).setMismatchedBlocks(st.mismatchedBlocks())
                .setLookupErrors(st.lookupErrors()).setBytesIn(st.bytesIn()).setBytesOut(st.bytesOut())
                .setPublishes(st.publishes()).setPublished(st.published()).setPublishDrops(st.publishDrops())
                .setPublishErrors(st.publishErrors()).setPublishQueueDepth(st.publishQueueDepth())
                .setPublishSkippedRecent(r.publishSkippedRecent()).setGetMeanMicros(st.getMeanMicros())
                .setGetMaxMicros(st.getMaxMicros()).setPutMeanMicros(st.putMeanMicros())
                .setPutMaxMicros(st.putMaxMicros()).setLookupsSkippedLocal(r.lookupsSkippedLocal())
                .setUnauthenticatedBlocks(st.unauthenticatedBlocks()).build();
    }
}
