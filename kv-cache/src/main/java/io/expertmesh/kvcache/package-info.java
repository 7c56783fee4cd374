/**
 * The distributed KV tier: finished prefix blocks shared across routers and restarts.
 *
 * <p>The router uses only {@link io.expertmesh.kvcache.KvBlockStore}, {@link io.expertmesh.kvcache.KvBlock},
 * {@link io.expertmesh.kvcache.BlockKey}, {@link io.expertmesh.kvcache.KvStoreConfig} and
 * {@link io.expertmesh.kvcache.KvStores}; no Hazelcast type appears in them.
 * {@link io.expertmesh.kvcache.HazelcastKvBlockStore} keeps blocks in a Hazelcast IMap (compact
 * serialization, LRU eviction bounded per member, synchronous backups), as an embedded member or a client of
 * {@link io.expertmesh.kvcache.KvCacheNode}s. With a {@link io.expertmesh.kvcache.KvSecret} it signs the blocks it
 * publishes and adopts only blocks signed with the same secret (HMAC-SHA256), since anyone who reaches a member can
 * write to the map.
 */
package io.expertmesh.kvcache;
