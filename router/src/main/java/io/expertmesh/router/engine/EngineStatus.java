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
 */
public record EngineStatus(boolean draining, int running, int waiting, int maxWaiting, KvCacheStats kv, long steps,
                           long generatedTokens, long preemptions, Map<String, Long> finished) {
}
