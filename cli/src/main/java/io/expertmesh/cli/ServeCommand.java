package io.expertmesh.cli;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.router.RouterConfig;
import io.expertmesh.router.RouterServer;
import io.expertmesh.router.engine.EngineConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code expertmesh serve}: the router with its experts in process, on a gRPC port. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over gRPC (expertmesh.inference.v1.InferenceService, health, reflection).")
final class ServeCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--port", paramLabel = "P", description = "gRPC port (default 50051; 0 = any free port).")
    int port = 50051;

    @Option(names = "--kv-block-size", paramLabel = "N", description = "Tokens per KV block (default 16).")
    int blockSize = 16;

    @Option(names = "--kv-cache-mb", paramLabel = "MB", description = "KV cache memory in MiB (default 1024).")
    long kvCacheMb = 1024;

    @Option(names = "--max-batched-tokens", paramLabel = "N", description = "Token budget per step (default 512).")
    int maxBatchedTokens = 512;

    @Option(names = "--max-running", paramLabel = "N", description = "Sequences per step at most (default 64).")
    int maxRunning = 64;

    @Option(names = "--max-waiting", paramLabel = "N",
            description = "Waiting requests before RESOURCE_EXHAUSTED (default 256).")
    int maxWaiting = 256;

    @Option(names = "--no-prefix-caching", description = "Do not reuse KV blocks of shared prompt prefixes.")
    boolean noPrefixCaching;

    @Option(names = "--max-buffered-tokens", paramLabel = "N",
            description = "Unread tokens after which a slow client's stream is cut (default 4096).")
    int maxBufferedTokens = 4096;

    @Option(names = "--drain-grace-seconds", paramLabel = "S",
            description = "On SIGTERM, how long running requests may finish (default 30).")
    long drainGraceSeconds = 30;

    @Override
    public Integer call() throws Exception {
        Path dir = model.resolveModelDir();
        RouterConfig config = new RouterConfig(port, dir, new EngineConfig(blockSize, kvCacheMb << 20,
                maxBatchedTokens, maxRunning, maxWaiting, !noPrefixCaching), maxBufferedTokens,
                Duration.ofSeconds(drainGraceSeconds));
        LOG.info("Effective configuration: {}", config);
        RouterServer server = new RouterServer(config);
        server.start(() -> {
            try {
                return LoadedModel.open(dir, model.newKernels(), (done, total) -> { });
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        Thread hook = Thread.ofPlatform().unstarted(() -> {
            try {
                server.drain();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        Runtime.getRuntime().addShutdownHook(hook);
        server.awaitLoaded();
        System.err.println("expertmesh serving " + dir.getFileName() + " on port " + server.port());
        server.awaitTermination();
        return 0;
    }
}
