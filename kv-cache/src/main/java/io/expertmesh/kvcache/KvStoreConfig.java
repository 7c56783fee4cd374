package io.expertmesh.kvcache;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * How to reach (or be) the distributed KV tier. Validated on construction; build with {@link #builder}.
 *
 * @param mode                 {@link Mode#EMBEDDED}: this process is a Hazelcast member; {@link Mode#CLIENT}:
 *                             a client of cache nodes; {@link Mode#NONE}: no tier ({@link NoopKvBlockStore})
 * @param clusterName          Hazelcast cluster name; members and clients only join the same name
 *                             (default {@code expertmesh-kv})
 * @param namespace            map suffix: blocks live in IMap {@code expertmesh-kv-<namespace>}
 *                             (letters, digits, {@code . _ -}; default {@code default})
 * @param members              {@code host:port} of members, one by one (ranges are not accepted). EMBEDDED:
 *                             the tcp-ip join list (empty: a cluster of this member alone); CLIENT: where to
 *                             connect (required)
 * @param memberHost           EMBEDDED: the address this member binds (that interface only, never the wildcard)
 *                             and advertises (default {@code 127.0.0.1})
 * @param memberPort           EMBEDDED: this member's port, or the first of its range (default 5801)
 * @param memberPortCount      EMBEDDED: ports from {@code memberPort} on that the member may bind, the first free
 *                             one at bind time (default 1: exactly {@code memberPort})
 * @param backupCount          synchronous backups of each entry, 0..6 (default 1: survives losing one member)
 * @param maxEntriesPerMember  bound by entry count per member (eviction {@code PER_NODE}, LRU); 0 = unused
 * @param maxHeapMbPerMember   bound by heap per member in MB (eviction {@code USED_HEAP_SIZE}, LRU; default
 *                             1024). Exactly one of the two bounds must be positive.
 * @param nearCache            keep recently read blocks in this process too (clients and embedded members;
 *                             invalidated on change; default off)
 * @param nearCacheMaxEntries  near cache bound in blocks, LRU (default 64; a DeepSeek-V3 block is 2.2 MB)
 * @param publishQueueCapacity blocks waiting to be stored before {@code publish} drops (default 32)
 * @param lookupTimeoutMillis  time budget of one {@code getPrefix}; past it the lookup returns the hits so far
 *                             (default 500)
 * @param lookupBatch          blocks requested at once while walking a prefix (default 8): larger is fewer
 *                             round trips, smaller wastes less transfer past the first miss
 * @param partitionCount       Hazelcast partitions; must be equal on all members (default 271)
 * @param connectTimeoutMillis CLIENT: how long {@link KvStores#create} waits for the first connection before
 *                             going on without it (the client keeps reconnecting; default 10000)
 * @param secret               the key blocks are signed and checked with ({@link BlockAuthenticator}); null:
 *                             blocks are neither signed nor checked (default)
 * @param insecure             allow a tier reachable from other hosts without a secret (see
 *                             {@link #requireSecretWhenExposed()}; default false)
 */
public record KvStoreConfig(Mode mode, String clusterName, String namespace, List<String> members,
                            String memberHost, int memberPort, int memberPortCount, int backupCount,
                            int maxEntriesPerMember, int maxHeapMbPerMember, boolean nearCache,
                            int nearCacheMaxEntries, int publishQueueCapacity, int lookupTimeoutMillis,
                            int lookupBatch, int partitionCount, int connectTimeoutMillis, KvSecret secret,
                            boolean insecure) {

    /** Where the tier lives relative to this process. */
    public enum Mode { EMBEDDED, CLIENT, NONE }

    private static final Pattern NAMESPACE = Pattern.compile("[A-Za-z0-9._-]+");
    private static final Pattern HOST_PORT = Pattern.compile("[^\\s:]+:\\d{1,5}");

    public KvStoreConfig {
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(clusterName, "clusterName");
        Objects.requireNonNull(namespace, "namespace");
        Objects.requireNonNull(memberHost, "memberHost");
        members = List.copyOf(Objects.requireNonNull(members, "members"));
        if (clusterName.isBlank()) {
            throw new IllegalArgumentException("clusterName must not be blank");
        }
        if (!NAMESPACE.matcher(namespace).matches()) {
            throw new IllegalArgumentException("namespace must be letters, digits, '.', '_' or '-', got '"
                    + namespace + "'");
        }
        for (String m : members) {
            checkHostPort(m);
        }
        if (mode == Mode.CLIENT && members.isEmpty()) {
            throw new IllegalArgumentException("CLIENT mode needs at least one member host:port");
        }
        checkPort(memberPort, "memberPort");
        if (memberPortCount < 1 || memberPort + memberPortCount - 1 > 65535) {
            throw new IllegalArgumentException("memberPortCount must be >= 1 and keep ports <= 65535, got "
                    + memberPortCount + " from " + memberPort);
        }
        if (backupCount < 0 || backupCount > 6) {
            throw new IllegalArgumentException("backupCount must be in [0, 6], got " + backupCount);
        }
        if (maxEntriesPerMember < 0 || maxHeapMbPerMember < 0
                || (maxEntriesPerMember > 0) == (maxHeapMbPerMember > 0)) {
            throw new IllegalArgumentException("exactly one of maxEntriesPerMember (" + maxEntriesPerMember
                    + ") and maxHeapMbPerMember (" + maxHeapMbPerMember + ") must be positive");
        }
        positive(nearCacheMaxEntries, "nearCacheMaxEntries");
        positive(publishQueueCapacity, "publishQueueCapacity");
        positive(lookupTimeoutMillis, "lookupTimeoutMillis");
        positive(lookupBatch, "lookupBatch");
        positive(partitionCount, "partitionCount");
        positive(connectTimeoutMillis, "connectTimeoutMillis");
    }

    /**
     * Whether hosts other than this one can reach the tier: an embedded member on a non-loopback address, or a
     * member listed that is not loopback. Only literal loopback addresses and {@code localhost} count as
     * loopback (no name is resolved: a name that happens to resolve to 127.0.0.1 today is not trusted).
     */
    public boolean reachableFromOtherHosts() {
        if (mode == Mode.NONE) {
            return false;
        }
        if (mode == Mode.EMBEDDED && !isLoopback(memberHost)) {
            return true;
        }
        return members.stream().anyMatch(m -> !isLoopback(m.substring(0, m.lastIndexOf(':'))));
    }

    /**
     * Refuses a tier reachable from other hosts whose blocks nobody signs: anyone who can reach a member could
     * then write blocks this router adopts (the checksum is no defence, a forger recomputes it).
     *
     * @throws IllegalArgumentException naming the exposed address and the two ways out
     */
    public void requireSecretWhenExposed() {
        if (secret == null && !insecure && reachableFromOtherHosts()) {
            String where = mode == Mode.EMBEDDED && !isLoopback(memberHost) ? memberHost : String.join(",", members);
            throw new IllegalArgumentException("the KV tier (" + where + ") is reachable from other hosts, so its "
                    + "blocks could be forged: give every router the same --kv-secret-file, or --kv-insecure to "
                    + "accept unauthenticated blocks");
        }
    }

    static boolean isLoopback(String host) {
        if (host.equalsIgnoreCase("localhost")) {
            return true;
        }
        try {
            return java.net.InetAddress.ofLiteral(host).isLoopbackAddress();
        } catch (IllegalArgumentException notALiteral) {
            return false;
        }
    }

    /** The IMap holding this namespace's blocks. */
    public String mapName() {
        return "expertmesh-kv-" + namespace;
    }

    /** Splits {@code "host:port,host:port"} (blanks around commas ignored; empty string → empty list). */
    public static List<String> parseMembers(String csv) {
        List<String> out = new ArrayList<>();
        for (String s : csv.split(",")) {
            String t = s.strip();
            if (!t.isEmpty()) {
                checkHostPort(t);
                out.add(t);
            }
        }
        return out;
    }

    public static Builder builder(Mode mode) {
        return new Builder(mode);
    }

    public Builder toBuilder() {
        return new Builder(mode).clusterName(clusterName).namespace(namespace).members(members)
                .memberHost(memberHost).memberPort(memberPort).memberPortCount(memberPortCount)
                .backupCount(backupCount)
                .maxEntriesPerMember(maxEntriesPerMember).maxHeapMbPerMember(maxHeapMbPerMember)
                .nearCache(nearCache).nearCacheMaxEntries(nearCacheMaxEntries)
                .publishQueueCapacity(publishQueueCapacity).lookupTimeoutMillis(lookupTimeoutMillis)
                .lookupBatch(lookupBatch).partitionCount(partitionCount).connectTimeoutMillis(connectTimeoutMillis)
                .secret(secret).insecure(insecure);
    }

    private static void checkHostPort(String s) {
        if (!HOST_PORT.matcher(s).matches()) {
            throw new IllegalArgumentException("a member must be host:port, one per entry (no ranges), got '"
                    + s + "'");
        }
        checkPort(Integer.parseInt(s.substring(s.lastIndexOf(':') + 1)), "port of " + s);
    }

    private static void checkPort(int port, String what) {
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException(what + " must be in [1, 65535], got " + port);
        }
    }

    private static void positive(int v, String what) {
        if (v <= 0) {
            throw new IllegalArgumentException(what + " must be positive, got " + v);
        }
    }

    /** Defaults as documented on the record; {@link #build()} validates. */
    public static final class Builder {
        private final Mode mode;
        private String clusterName = "expertmesh-kv";
        private String namespace = "default";
        private List<String> members = List.of();
        private String memberHost = "127.0.0.1";
        private int memberPort = 5801;
        private int memberPortCount = 1;
        private int backupCount = 1;
        private int maxEntriesPerMember = 0;
        private int maxHeapMbPerMember = 1024;
        private boolean nearCache = false;
        private int nearCacheMaxEntries = 64;
        private int publishQueueCapacity = 32;
        private int lookupTimeoutMillis = 500;
        private int lookupBatch = 8;
        private int partitionCount = 271;
        private int connectTimeoutMillis = 10_000;
        private KvSecret secret;
        private boolean insecure;

        private Builder(Mode mode) {
            this.mode = mode;
        }

        public Builder clusterName(String v) { clusterName = v; return this; }
        public Builder namespace(String v) { namespace = v; return this; }
        public Builder members(List<String> v) { members = v; return this; }
        public Builder members(String csv) { members = parseMembers(csv); return this; }
        public Builder memberHost(String v) { memberHost = v; return this; }
        public Builder memberPort(int v) { memberPort = v; return this; }
        public Builder memberPortCount(int v) { memberPortCount = v; return this; }
        public Builder backupCount(int v) { backupCount = v; return this; }
        /** Bounds by entry count, clearing the heap bound. */
        public Builder maxEntriesPerMember(int v) { maxEntriesPerMember = v; if (v > 0) { maxHeapMbPerMember = 0; } return this; }
        /** Bounds by heap, clearing the entry-count bound. */
        public Builder maxHeapMbPerMember(int v) { maxHeapMbPerMember = v; if (v > 0) { maxEntriesPerMember = 0; } return this; }
        public Builder nearCache(boolean v) { nearCache = v; return this; }
        public Builder nearCacheMaxEntries(int v) { nearCacheMaxEntries = v; return this; }
        public Builder publishQueueCapacity(int v) { publishQueueCapacity = v; return this; }
        public Builder lookupTimeoutMillis(int v) { lookupTimeoutMillis = v; return this; }
        public Builder lookupBatch(int v) { lookupBatch = v; return this; }
        public Builder partitionCount(int v) { partitionCount = v; return this; }
        public Builder connectTimeoutMillis(int v) { connectTimeoutMillis = v; return this; }
        public Builder secret(KvSecret v) { secret = v; return this; }
        public Builder insecure(boolean v) { insecure = v; return this; }

        public KvStoreConfig build() {
            return new KvStoreConfig(mode, clusterName, namespace, members, memberHost, memberPort, memberPortCount,
                    backupCount, maxEntriesPerMember, maxHeapMbPerMember, nearCache, nearCacheMaxEntries,
                    publishQueueCapacity, lookupTimeoutMillis, lookupBatch, partitionCount, connectTimeoutMillis,
                    secret, insecure);
        }
    }
}
