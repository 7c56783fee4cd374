/**
 * The router's paged KV cache, modelled on vLLM v1 ({@code kv_cache_utils.py}, {@code block_pool.py},
 * {@code kv_cache_manager.py}): one {@link io.expertmesh.router.kv.PagedKvStorage} allocated at start-up,
 * a {@link io.expertmesh.router.kv.BlockPool} of ref-counted blocks with an O(1) LRU free queue, chained
 * {@link io.expertmesh.router.kv.BlockHasher block hashes} for prefix reuse, and a
 * {@link io.expertmesh.router.kv.KvCacheManager} that gives each sequence a
 * {@link io.expertmesh.router.kv.BlockTable}.
 *
 * <p>Everything here is single-threaded: the engine's step thread is the only caller, so there are no locks.
 */
package io.expertmesh.router.kv;
