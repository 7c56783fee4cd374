package io.expertmesh.cli;

import io.expertmesh.core.LoadedModel;
import io.expertmesh.kvcache.KvStoreConfig;
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

    /** The {@code --kv-store} values. */
    enum KvStoreMode {
        embedded(KvStoreConfig.Mode.EMBEDDED), hazelcast_client(KvStoreConfig.Mode.CLIENT), none(KvStoreConfig.Mode.NONE);

        final KvStoreConfig.Mode mode;

        KvStoreMode(KvStoreConfig.Mode mode) {
            this.mode = mode;
        }

        static KvStoreMode parse(String s) {
            return valueOf(s.strip().toLowerCase(java.util.Locale.ROOT).replace('-', '_'));
        }
    }

    // Default none: an embedded Hazelcast member in every `serve` adds seconds to start-up and claims a fixed
    // port, which breaks running two routers (or the smoke test next to a router) on one host without extra
    // flags. Turn the tier on with --kv-store embedded (routers form a cluster through --kv-members) or
    // --kv-store hazelcast-client --kv-members of cache nodes.
    @Option(names = "--kv-store", paramLabel = "MODE", converter = KvStoreModeConverter.class,
            description = "Distributed KV tier: embedded (a Hazelcast member in this router), hazelcast-client "
                    + "(a client of --kv-members), or none (default none).")
    KvStoreMode kvStore = KvStoreMode.none;

    @Option(names = "--kv-members", paramLabel = "HOST:PORT,...",
            description = "Hazelcast members, one host:port each: embedded joins them, hazelcast-client connects "
                    + "to them (required for hazelcast-client).")
    String kvMembers = "";

    @Option(names = "--kv-port", paramLabel = "P", description = "Port of the embedded member (default 5801).")
    int kvPort = 5801;

    @Option(names = "--kv-host", paramLabel = "HOST",
            description = "Address the embedded member binds and advertises (default 127.0.0.1).")
    String kvHost = "127.0.0.1";

    @Option(names = "--kv-cluster-name", paramLabel = "NAME",
            description = "Hazelcast cluster name (default expertmesh-kv).")
    String kvClusterName = "expertmesh-kv";

    @Option(names = "--kv-max-heap-mb", paramLabel = "MB",
            description = "Embedded member: heap its blocks may use before LRU eviction (default 1024).")
    int kvMaxHeapMb = 1024;

    // A long prompt finishes many blocks in one step (a 4,096-token prompt: 256 blocks of 16); the store's
    // own default of 32 would drop most of them. 128 blocks of a DeepSeek-V3 block (2.2 MB) is about 280 MB.
    @Option(names = "--kv-publish-queue", paramLabel = "N",
            description = "Blocks waiting to be published before new ones are dropped (default 128).")
    int kvPublishQueue = 128;

    static final class KvStoreModeConverter implements picocli.CommandLine.ITypeConverter<KvStoreMode> {
        @Override
        public KvStoreMode convert(String value) {
            try {
                return KvStoreMode.parse(value);
            } catch (IllegalArgumentException e) {
                throw new picocli.CommandLine.TypeConversionException(
                        "expected embedded, hazelcast-client or none, got '" + value + "'");
            }
        }
    }

    KvStoreConfig kvStoreConfig() {
        return KvStoreConfig.builder(kvStore.mode).clusterName(kvClusterName).members(kvMembers)
                .memberHost(kvHost).memberPort(kvPort).maxHeapMbPerMember(kvMaxHeapMb)
                .publishQueueCapacity(kvPublishQueue).build();
    }

    @Override
    public Integer call() throws Exception {
        Path dir = model.resolveModelDir();
        RouterConfig config = new RouterConfig(port, dir, new EngineConfig(blockSize, kvCacheMb << 20,
                maxBatchedTokens, maxRunning, maxWaiting, !noPrefixCaching), maxBufferedTokens,
                Duration.ofSeconds(drainGraceSeconds), kvStoreConfig());
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
