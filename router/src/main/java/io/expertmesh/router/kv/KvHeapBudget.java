package io.expertmesh.router.kv;

/**
 * Whether a paged KV cache of a given size fits the Java heap, checked before a router starts: the cache is
 * allocated on the heap at start-up, and one that does not fit ends, after the collector has tried for half a
 * minute, in an OutOfMemoryError. A one-line error that says which way to go is the better answer.
 */
public final class KvHeapBudget {
    /** Heap kept for everything else: the step's scratch, requests, the tokenizer, gRPC and the KV tier client. */
    static final long RESERVE_BYTES = 256L << 20;

    private KvHeapBudget() {
    }

    /**
     * Throws if {@code kvBytes} of KV cache does not fit beside {@code usedBytes} already in use and the reserve
     * (256 MiB plus an eighth of the maximum) in a heap of {@code maxHeapBytes}.
     *
     * @param flag the option that set the size, named in the message
     * @throws IllegalArgumentException naming the largest size that fits and the heap that would fit this one
     */
    public static void require(long kvBytes, long maxHeapBytes, long usedBytes, String flag) {
        long reserve = RESERVE_BYTES + maxHeapBytes / 8;
        long available = maxHeapBytes - usedBytes - reserve;
        if (kvBytes <= available) {
            return;
        }
        long mib = 1L << 20;
        long needHeap = (kvBytes + usedBytes + RESERVE_BYTES) * 8 / 7 + mib - 1;
        throw new IllegalArgumentException(flag + " " + kvBytes / mib + " does not fit the Java heap (at most "
                + maxHeapBytes / mib + " MiB, of which " + Math.max(0, available) / mib + " MiB can hold the KV "
                + "cache): lower " + flag + " to " + Math.max(0, available) / mib + " or less, or give the JVM more "
                + "heap (EXPERTMESH_JAVA_OPTS=-Xmx" + needHeap / mib + "m)");
    }

    /** {@link #require} for this JVM's heap as it is now. */
    public static void require(long kvBytes, String flag) {
        Runtime rt = Runtime.getRuntime();
        require(kvBytes, rt.maxMemory(), rt.totalMemory() - rt.freeMemory(), flag);
    }
}
