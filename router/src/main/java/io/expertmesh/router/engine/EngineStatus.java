package io.expertmesh.router.engine;

import io.expertmesh.router.kv.KvCacheStats;
import java.util.Map;

/**
 * A snapshot of the engine, refreshed after every step and after every batch of cancellations.
 *
 * @param draining        admission stopped
 * @param running         sequences being generated
 * @param waiting         requests not yet scheduled (including preempted ones)
 * @param maxWaiting      the waiting queue's bound
 * @param kv              KV cache state
 * @param steps           forward steps run
 * @param generatedTokens tokens generated
 * @param preemptions     sequences preempted
 * @param finished        finished requests by finish reason wire name
 * @param remote          the distributed KV tier's counters, or null when the tier is off
 */
public record EngineStatus(boolean draining, int running, int waiting, int maxWaiting, KvCacheStats kv, long steps,
                           long generatedTokens, long preemptions, Map<String, Long> finished, Remote remote) {

    /**
     * The engine's side of the distributed KV tier (the store's own counters come from
     * {@link Engine#kvStoreStats()}).
     *
     * @param adoptedBlocks        blocks found in the store and imported into the local cache at admission
     * @param publishedBlocks      locally computed prompt blocks handed to the store's publish queue
     * @param publishSkippedRecent computed blocks not handed over because they were published recently
     * @param lookupsSkippedLocal  lookups not sent because the local cache held every reusable block
     */
    public record Remote(long adoptedBlocks, long publishedBlocks, long publishSkippedRecent,
                         long lookupsSkippedLocal) {
    }
}
