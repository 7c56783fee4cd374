package io.expertmesh.router;

import io.expertmesh.kvcache.KvStoreConfig;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.router.experts.ExpertClusterConfig;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Router settings, validated once.
 *
 * @param port              gRPC port (0 = any free port)
 * @param modelDir          Hugging Face model directory
 * @param engine            scheduler and KV cache settings
 * @param maxBufferedTokens tokens a slow client may leave unread before its stream is cut
 * @param drainGrace        how long a drain lets running requests finish before cancelling them
 * @param kvStore           the distributed KV tier: an embedded Hazelcast member, a client of cache nodes, or
 *                          none ({@link KvStoreConfig.Mode#NONE})
 * @param experts           expert workers that run the routed experts, or null to run them in process
 */
public record RouterConfig(int port, Path modelDir, EngineConfig engine, int maxBufferedTokens, Duration drainGrace,
                           KvStoreConfig kvStore, ExpertClusterConfig experts) {

    /** A router with its experts in process. */
    public RouterConfig(int port, Path modelDir, EngineConfig engine, int maxBufferedTokens, Duration drainGrace,
                        KvStoreConfig kvStore) {
        this(port, modelDir, engine, maxBufferedTokens, drainGrace, kvStore, null);
    }

    /** A router without a distributed KV tier. */
    public RouterConfig(int port, Path modelDir, EngineConfig engine, int maxBufferedTokens, Duration drainGrace) {
        this(port, modelDir, engine, maxBufferedTokens, drainGrace, KvStoreConfig.builder(KvStoreConfig.Mode.NONE)
                .build());
    }

    public RouterConfig {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
        }
        if (modelDir == null) {
            throw new IllegalArgumentException("model directory is required");
        }
        if (maxBufferedTokens < 1) {
            throw new IllegalArgumentException("max buffered tokens must be >= 1, got " + maxBufferedTokens);
        }
        if (drainGrace.isNegative()) {
            throw new IllegalArgumentException("drain grace must be >= 0, got " + drainGrace);
        }
        if (kvStore == null) {
            throw new IllegalArgumentException("kv store configuration is required (mode NONE for none)");
        }
    }
}
