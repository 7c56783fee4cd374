package io.expertmesh.kvcache;

import java.util.List;
import java.util.Objects;

/** The store for {@code --kv-store none}: every lookup misses, every publish is accepted and forgotten. */
public final class NoopKvBlockStore implements KvBlockStore {
    private final StatsRecorder stats = new StatsRecorder();

    @Override
    public List<KvBlock> getPrefix(List<BlockKey> keys, List<int[]> expectedTokens) {
        Objects.requireNonNull(keys, "keys");
        stats.lookup(keys.size());
        return List.of();
    }

    @Override
    public boolean publish(KvBlock block) {
        Objects.requireNonNull(block, "block");
        return true;
    }

    @Override
    public KvStoreStats stats() {
        return stats.snapshot(0);
    }

    @Override
    public void close() {
    }
}
