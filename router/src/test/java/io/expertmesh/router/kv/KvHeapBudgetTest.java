package io.expertmesh.router.kv;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** A KV cache larger than the heap is refused at start-up with a message that says how to fix it. */
class KvHeapBudgetTest {
    private static final long MIB = 1L << 20;

    @Test
    void fitsBesideTheReserve_accepted() {
        // 6 GiB heap, 100 MiB in use: 6144 - 100 - 256 - 768 = 5020 MiB can hold the cache
        assertDoesNotThrow(() -> KvHeapBudget.require(1024 * MIB, 6144 * MIB, 100 * MIB, "--kv-cache-mb"));
        assertDoesNotThrow(() -> KvHeapBudget.require(5020 * MIB, 6144 * MIB, 100 * MIB, "--kv-cache-mb"));
    }

    @Test
    void tooLarge_refusedNamingTheLargestThatFitsAndAHeapThatFitsIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KvHeapBudget.require(40000 * MIB, 6144 * MIB, 100 * MIB, "--kv-cache-mb"));
        String m = e.getMessage();
        assertTrue(m.startsWith("--kv-cache-mb 40000 does not fit the Java heap"), m);
        assertTrue(m.contains("lower --kv-cache-mb to 5020 or less"), m);
        Matcher xmx = Pattern.compile("-Xmx(\\d+)m").matcher(m);
        assertTrue(xmx.find(), m);
        long heap = Long.parseLong(xmx.group(1)) * MIB;
        // the suggested heap does take the cache
        assertDoesNotThrow(() -> KvHeapBudget.require(40000 * MIB, heap, 100 * MIB, "--kv-cache-mb"));
        assertThrows(IllegalArgumentException.class,
                () -> KvHeapBudget.require(40000 * MIB, heap - 64 * MIB, 100 * MIB, "--kv-cache-mb"));
    }

    @Test
    void heapSmallerThanTheReserve_saysZeroFits() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> KvHeapBudget.require(16 * MIB, 256 * MIB, 50 * MIB, "--kv-cache-mb"));
        assertTrue(e.getMessage().contains("lower --kv-cache-mb to 0 or less"), e.getMessage());
    }
}
