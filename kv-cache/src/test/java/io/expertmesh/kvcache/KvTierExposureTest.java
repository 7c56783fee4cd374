package io.expertmesh.kvcache;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A tier other hosts can reach needs a secret, or an explicit --kv-insecure; a loopback tier needs neither. */
class KvTierExposureTest {
    @TempDir
    Path tmp;

    private static KvStoreConfig.Builder embedded(String host, String members) {
        return KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED).memberHost(host).members(members);
    }

    @Test
    void loopbackEmbeddedAndClient_needNoSecret() {
        assertDoesNotThrow(() -> embedded("127.0.0.1", "127.0.0.1:5801,localhost:5802").build()
                .requireSecretWhenExposed());
        assertDoesNotThrow(() -> KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT).members("127.0.0.1:5801")
                .build().requireSecretWhenExposed());
        assertDoesNotThrow(() -> KvStoreConfig.builder(KvStoreConfig.Mode.NONE).memberHost("10.0.0.1").build()
                .requireSecretWhenExposed());
    }

    @Test
    void nonLoopbackHostOrMember_withoutSecret_refusedWithOneLineNamingTheFlags() {
        IllegalArgumentException host = assertThrows(IllegalArgumentException.class,
                () -> embedded("10.0.0.5", "").build().requireSecretWhenExposed());
        IllegalArgumentException member = assertThrows(IllegalArgumentException.class,
                () -> embedded("127.0.0.1", "127.0.0.1:5801,10.0.0.6:5801").build().requireSecretWhenExposed());
        IllegalArgumentException client = assertThrows(IllegalArgumentException.class,
                () -> KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT).members("cache-0:5801").build()
                        .requireSecretWhenExposed());
        IllegalArgumentException created = assertThrows(IllegalArgumentException.class,
                () -> KvStores.create(KvStoreConfig.builder(KvStoreConfig.Mode.CLIENT).members("cache-0:5801")
                        .build()));

        for (IllegalArgumentException e : new IllegalArgumentException[] {host, member, client, created}) {
            assertTrue(e.getMessage().contains("--kv-secret-file") && e.getMessage().contains("--kv-insecure"),
                    e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line");
        }
        assertTrue(host.getMessage().contains("10.0.0.5"), host.getMessage());
    }

    @Test
    void nonLoopback_withSecretOrInsecure_accepted() throws IOException {
        KvSecret secret = BlockAuthenticatorTest.secret(tmp, "s", "e".repeat(64));
        assertDoesNotThrow(() -> embedded("10.0.0.5", "").secret(secret).build().requireSecretWhenExposed());
        assertDoesNotThrow(() -> embedded("10.0.0.5", "").insecure(true).build().requireSecretWhenExposed());
    }

    @Test
    void isLoopback_literalsAndLocalhostOnly_namesNotResolved() {
        assertTrue(KvStoreConfig.isLoopback("127.0.0.1"));
        assertTrue(KvStoreConfig.isLoopback("127.3.2.1"));
        assertTrue(KvStoreConfig.isLoopback("::1"));
        assertTrue(KvStoreConfig.isLoopback("LOCALHOST"));
        assertFalse(KvStoreConfig.isLoopback("0.0.0.0"));
        assertFalse(KvStoreConfig.isLoopback("10.0.0.1"));
        assertFalse(KvStoreConfig.isLoopback("localhost.example"));
    }
}
