package io.expertmesh.kvcache;

import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.config.ListenerConfig;
import com.hazelcast.core.LifecycleEvent;
import com.hazelcast.core.LifecycleListener;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import com.hazelcast.core.HazelcastInstance;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Builds the {@link KvBlockStore} a {@link KvStoreConfig} asks for. */
public final class KvStores {
    private static final Logger log = LoggerFactory.getLogger(KvStores.class);

    private KvStores() {
    }

    /**
     * NONE: a {@link NoopKvBlockStore}. EMBEDDED: starts a Hazelcast member in this process (it joins the
     * listed members). CLIENT: connects to the listed members, waiting up to {@code connectTimeoutMillis}; a
     * cluster not reachable by then is logged, not fatal: lookups miss and the client keeps reconnecting.
     * The returned store owns the member or client and shuts it down on {@link KvBlockStore#close()}.
     *
     * @throws IllegalStateException when the member or client cannot start (e.g. the member's port is taken)
     */
    public static KvBlockStore create(KvStoreConfig cfg) {
        log.info("KV store: {}", cfg);
        return switch (cfg.mode()) {
            case NONE -> new NoopKvBlockStore();
            case EMBEDDED -> new HazelcastKvBlockStore(start(() -> HazelcastConfigs.startMember(cfg, false)), cfg,
                    true);
            case CLIENT -> new HazelcastKvBlockStore(startClient(cfg), cfg, true);
        };
    }

    private static HazelcastInstance startClient(KvStoreConfig cfg) {
        CountDownLatch connected = new CountDownLatch(1);
        ClientConfig cc = HazelcastConfigs.client(cfg);
        cc.addListenerConfig(new ListenerConfig((LifecycleListener) e -> {
            if (e.getState() == LifecycleEvent.LifecycleState.CLIENT_CONNECTED) {
                connected.countDown();
            }
        }));
        HazelcastInstance client = start(() -> HazelcastClient.newHazelcastClient(cc));
        try {
            if (!connected.await(cfg.connectTimeoutMillis(), TimeUnit.MILLISECONDS)) {
                log.warn("KV tier {} at {} not reachable within {} ms; lookups miss until the client connects",
                        cfg.clusterName(), cfg.members(), cfg.connectTimeoutMillis());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return client;
    }

    private static HazelcastInstance start(java.util.function.Supplier<HazelcastInstance> starter) {
        try {
            return starter.get();
        } catch (RuntimeException e) {
            throw new IllegalStateException("cannot start the KV store's Hazelcast instance: " + e.getMessage(), e);
        }
    }
}
