package io.expertmesh.kvcache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** HMAC-SHA256 block signing: what it covers, what a forger with a valid checksum still cannot do. */
class BlockAuthenticatorTest {
    @TempDir
    Path tmp;

    static KvSecret secret(Path dir, String name, String text) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, text + "\n");
        return KvSecret.read(f);
    }

    @Test
    void verify_signedBlock_passes_unsignedOrOtherSecret_fails() throws IOException {
        BlockAuthenticator auth = new BlockAuthenticator(secret(tmp, "s1", "a".repeat(64)));
        BlockAuthenticator other = new BlockAuthenticator(secret(tmp, "s2", "b".repeat(64)));
        KvBlock b = TestBlocks.tiny(1);

        KvBlock signed = auth.signed(b);

        assertNotNull(signed.mac());
        assertEquals(32, signed.mac().length);
        assertTrue(auth.verify(signed));
        assertFalse(auth.verify(b), "an unsigned block");
        assertFalse(other.verify(signed), "signed with another secret");
        assertEquals(b, signed, "the MAC is not part of the contents");
    }

    @Test
    void verify_contentsChangedAndChecksumRecomputed_failsTheMac() throws IOException {
        BlockAuthenticator auth = new BlockAuthenticator(secret(tmp, "s", "c".repeat(40)));
        KvBlock b = auth.signed(TestBlocks.tiny(2));
        float[] data = b.data().clone();
        data[3] += 1f;
        int[] tokens = b.tokenIds().clone();
        tokens[0]++;

        KvBlock forgedData = KvBlock.of(b.key(), b.tokenIds(), b.numLayers(), b.rowWidth(), b.blockSize(), data)
                .withMac(b.mac());
        KvBlock forgedTokens = KvBlock.of(b.key(), tokens, b.numLayers(), b.rowWidth(), b.blockSize(), b.data())
                .withMac(b.mac());
        KvBlock moved = KvBlock.of(new BlockKey(1, 2), b.tokenIds(), b.numLayers(), b.rowWidth(), b.blockSize(),
                b.data()).withMac(b.mac());

        assertTrue(forgedData.verify() && forgedTokens.verify() && moved.verify(), "checksums are valid");
        assertFalse(auth.verify(forgedData), "other floats");
        assertFalse(auth.verify(forgedTokens), "other token ids");
        assertFalse(auth.verify(moved), "another key");
    }

    @Test
    void read_shortOrMissingSecret_clearMessageWithoutTheSecret() throws IOException {
        Path shortFile = tmp.resolve("short");
        Files.writeString(shortFile, "tooShortSecret");

        IllegalArgumentException tooShort = assertThrows(IllegalArgumentException.class,
                () -> KvSecret.read(shortFile));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> KvSecret.read(tmp.resolve("absent")));

        assertTrue(tooShort.getMessage().contains("at least 32"), tooShort.getMessage());
        assertFalse(tooShort.getMessage().contains("tooShortSecret"), "the secret is never shown");
        assertTrue(missing.getMessage().contains("absent"), missing.getMessage());
        assertFalse(secret(tmp, "s", "d".repeat(64)).toString().contains("dddd"), "toString masks the secret");
    }
}
