package io.expertmesh.kvcache;

/**
 * Counters of a {@link KvBlockStore} since it was created.
 *
 * @param lookups          {@code getPrefix} calls
 * @param lookupBlocks     keys asked for, over all lookups
 * @param hits             lookups that returned at least one block
 * @param hitBlocks        blocks returned
 * @param hitTokens        tokens covered by the blocks returned
 * @param corruptBlocks    entries found but failing their checksum, or stored under another key
 * @param mismatchedBlocks entries found whose token ids were not the expected ones
 * @param lookupErrors     lookups cut short by an error or timeout of the store
 * @param bytesIn          payload bytes (token ids and floats) read from the store
 * @param bytesOut         payload bytes written to the store
 * @param publishes        blocks accepted into the publish queue
 * @param published        blocks stored
 * @param publishDrops     blocks refused because the queue was full or the store closed
 * @param publishErrors    blocks whose store call failed
 * @param publishQueueDepth blocks waiting in the publish queue now
 * @param getMeanMicros    mean time of one block read, request to response (reads of a batch overlap), µs
 * @param getMaxMicros     slowest block read, microseconds
 * @param putMeanMicros    mean time of one block write, microseconds
 * @param putMaxMicros     slowest block write, microseconds
 * @param unauthenticatedBlocks entries found that passed their checksum but not the MAC of this store's secret
 *                         (forged, or written by a router with another or no secret); misses
 */
public record KvStoreStats(long lookups, long lookupBlocks, long hits, long hitBlocks, long hitTokens,
                           long corruptBlocks, long mismatchedBlocks, long lookupErrors, long bytesIn,
                           long bytesOut, long publishes, long published, long publishDrops, long publishErrors,
                           int publishQueueDepth, double getMeanMicros, long getMaxMicros, double putMeanMicros,
                           long putMaxMicros, long unauthenticatedBlocks) {
}
