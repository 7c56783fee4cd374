package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.kvcache.KvStoreConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code serve --kv-*} options become the router's {@link KvStoreConfig}; {@code cache-node} is registered. */
class KvStoreOptionsTest {
    private static KvStoreConfig parse(String... args) {
        ServeCommand serve = new ServeCommand();
        new CommandLine(serve).parseArgs(args);
        return serve.kvStoreConfig();
    }

    @Test
    void serve_noKvFlags_embeddedMemberJoiningTheLocalPortRange() {
        KvStoreConfig c = parse();
        assertEquals(KvStoreConfig.Mode.EMBEDDED, c.mode());
        assertEquals(10, c.members().size());
        assertEquals("127.0.0.1:5801", c.members().get(0));
        assertEquals("127.0.0.1:5810", c.members().get(9));
        assertEquals(5801, c.memberPort(), "the range's first port; the member binds the first free one");
        assertEquals(10, c.memberPortCount());
        assertEquals(null, c.secret());
    }

    @Test
    void serve_kvStoreNone_tierOff() {
        assertEquals(KvStoreConfig.Mode.NONE, parse("--kv-store", "none").mode());
    }

    @Test
    void serve_exposedTierWithoutSecret_refusedInOneLine_secretFileOrInsecureAccepted(@TempDir Path tmp)
            throws Exception {
        Path secret = tmp.resolve("kv-secret");
        Files.writeString(secret, "0123456789abcdef0123456789abcdef\n");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> parse("--kv-store", "hazelcast-client", "--kv-members", "cache-0:5801")
                        .requireSecretWhenExposed());
        KvStoreConfig signed = parse("--kv-store", "hazelcast-client", "--kv-members", "cache-0:5801",
                "--kv-secret-file", secret.toString());
        KvStoreConfig insecure = parse("--kv-host", "10.1.2.3", "--kv-insecure");

        assertTrue(e.getMessage().contains("--kv-secret-file"), e.getMessage());
        assertNotNull(signed.secret());
        signed.requireSecretWhenExposed();
        insecure.requireSecretWhenExposed();
        assertThrows(IllegalArgumentException.class, () -> parse("--kv-secret-file", tmp.resolve("none").toString()),
                "a missing secret file");
    }

    @Test
    void serve_hazelcastClient_membersAndClusterName() {
        KvStoreConfig c = parse("--kv-store", "hazelcast-client", "--kv-members", "10.0.0.1:5801, 10.0.0.2:5802",
                "--kv-cluster-name", "prod-kv", "--kv-publish-queue", "64");
        assertEquals(KvStoreConfig.Mode.CLIENT, c.mode());
        assertEquals(List.of("10.0.0.1:5801", "10.0.0.2:5802"), c.members());
        assertEquals("prod-kv", c.clusterName());
        assertEquals(64, c.publishQueueCapacity());
    }

    @Test
    void serve_embedded_portAndHost() {
        KvStoreConfig c = parse("--kv-store", "embedded", "--kv-port", "5901", "--kv-host", "10.1.2.3",
                "--kv-max-heap-mb", "256");
        assertEquals(KvStoreConfig.Mode.EMBEDDED, c.mode());
        assertEquals(5901, c.memberPort());
        assertEquals("10.1.2.3", c.memberHost());
        assertEquals(256, c.maxHeapMbPerMember());
    }

    @Test
    void serve_unknownKvStore_rejected() {
        assertThrows(CommandLine.ParameterException.class, () -> parse("--kv-store", "redis"));
    }

    @Test
    void serve_clientWithoutMembers_rejected() {
        assertThrows(IllegalArgumentException.class, () -> parse("--kv-store", "hazelcast-client"));
    }

    @Test
    void main_cacheNode_isASubcommand() {
        assertTrue(Main.commandLine().getSubcommands().containsKey("cache-node"));
    }
}
