package io.expertmesh.router;

import io.expertmesh.router.engine.EngineConfig;
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
 */
public record RouterConfig(int port, Path modelDir, EngineConfig engine, int maxBufferedTokens, Duration drainGrace) {

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
    }
}
