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
     * @throws IllegalArgumentException when the tier is reachable from other hosts and has no secret (see
     *                                  {@link KvStoreConfig#requireSecretWhenExposed()})
     * @throws KvStoreStartException    when the member or client cannot start (e.g. every port of the member's
     *                                  range is taken)
     */
    public static KvBlockStore create(KvStoreConfig cfg) {
        log.info("KV store: {}", cfg);
        cfg.requireSecretWhenExposed();
        if (cfg.mode() != KvStoreConfig.Mode.NONE) {
            if (cfg.secret() != null) {
                log.info("KV blocks are signed and checked with HMAC-SHA256 ({})", cfg.secret());
            } else if (cfg.reachableFromOtherHosts()) {
                log.warn("KV tier reachable from other hosts without a secret (--kv-insecure): anyone who can reach "
                        + "it can write blocks this router adopts");
            }
        }
        return switch (cfg.mode()) {
            case NONE -> new NoopKvBlockStore();
            case EMBEDDED -> new HazelcastKvBlockStore(start(cfg, () -> HazelcastConfigs.startMember(cfg, false)),
                    cfg, true);
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
        HazelcastInstance client = start(cfg, () -> HazelcastClient.newHazelcastClient(cc));
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

    private static HazelcastInstance start(KvStoreConfig cfg, java.util.function.Supplier<HazelcastInstance> starter) {
        try {
            return starter.get();
        } catch (RuntimeException e) {
            String where = cfg.mode() == KvStoreConfig.Mode.CLIENT ? "client of " + cfg.members()
                    : "member on " + cfg.memberHost() + ":" + cfg.memberPort() + (cfg.memberPortCount() == 1 ? ""
                    : ".." + (cfg.memberPort() + cfg.memberPortCount() - 1));
            throw new KvStoreStartException("cannot start the KV store's Hazelcast " + where + ": "
                    + firstLine(e.getMessage()), e);
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "(no message)";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
