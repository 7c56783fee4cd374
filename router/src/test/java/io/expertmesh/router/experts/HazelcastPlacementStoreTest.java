package io.expertmesh.router.experts;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.HazelcastInstance;
import io.expertmesh.kvcache.HazelcastConfigs;
import io.expertmesh.kvcache.KvSecret;
import io.expertmesh.kvcache.KvStoreConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shared placement store on a Hazelcast member: the plan changes only by compare-and-set on its epoch (a
 * stale or backward epoch is refused and changes nothing), changes exclude each other, every store hears every
 * published plan, routers' reports (acknowledged epochs, load) are seen by all, and with the tier's secret a plan
 * not signed with it is refused.
 */
class HazelcastPlacementStoreTest {
    private HazelcastInstance hz;
    private HazelcastPlacementStore a;
    private HazelcastPlacementStore b;

    @BeforeEach
    void member() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        hz = HazelcastConfigs.startMember(KvStoreConfig.builder(KvStoreConfig.Mode.EMBEDDED)
                .clusterName("placement-store-" + UUID.randomUUID()).memberPort(port).partitionCount(7).build(), false);
        a = new HazelcastPlacementStore(hz, "t", Duration.ofSeconds(30), null);
        b = new HazelcastPlacementStore(hz, "t", Duration.ofSeconds(30), null);
    }

    @AfterEach
    void stop() {
        a.close();
        b.close();
        hz.shutdown();
    }

    private static SharedPlan plan(long epoch, String worker) {
        ExpertPlacement empty = ExpertPlacement.empty(2, new int[]{1}, 4);
        String[][][] r = empty.copy();
        for (int e = 0; e < 4; e++) {
            r[1][e] = new String[]{worker};
        }
        return new SharedPlan(epoch, 0, 0, 4, r);
    }

    @Test
    void advance_onlyFromTheCurrentEpochAndForward() {
        assertNull(a.current());
        StalePlanException fromNowhere = assertThrows(StalePlanException.class, () -> a.advance(3, plan(4, "w:1")));
        assertTrue(fromNowhere.getMessage().contains("stale") && fromNowhere.getMessage().contains("epoch 0"),
                fromNowhere.getMessage());
        a.advance(0, plan(1, "w:1"));
        assertEquals(1, b.current().epoch());

        // B made its change from epoch 0 too: refused, the plan stays A's
        StalePlanException stale = assertThrows(StalePlanException.class, () -> b.advance(0, plan(1, "w:2")));
        assertTrue(stale.getMessage().contains("stale plan change: made from epoch 0 but the placement is at epoch 1"),
                stale.getMessage());
        assertEquals("w:1", a.current().replicas()[1][0][0]);

        StalePlanException backward = assertThrows(StalePlanException.class, () -> b.advance(1, plan(1, "w:2")));
        assertTrue(backward.getMessage().contains("bad plan epoch 1"), backward.getMessage());
        assertEquals("w:1", b.current().replicas()[1][0][0]);

        b.advance(1, plan(5, "w:2"));
        assertEquals(5, a.current().epoch());
        assertEquals("w:2", a.current().replicas()[1][3][0]);
    }

    @Test
    void everyStoreHearsEveryPublishedPlan() {
        List<Long> heardByA = new CopyOnWriteArrayList<>();
        List<Long> heardByB = new CopyOnWriteArrayList<>();
        a.onPublished(p -> heardByA.add(p.epoch()));
        b.onPublished(p -> heardByB.add(p.epoch()));
        a.advance(0, plan(1, "w:1"));
        b.advance(1, plan(2, "w:2"));
        await().atMost(Duration.ofSeconds(20)).until(() -> heardByA.size() == 2 && heardByB.size() == 2);
        assertEquals(List.of(1L, 2L), heardByA);
        assertEquals(List.of(1L, 2L), heardByB);
    }

    @Test
    void exclusively_changesRunOneAtATime() throws Exception {
        CountDownLatch aInside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean overlap = new AtomicBoolean();
        AtomicBoolean aRunning = new AtomicBoolean();
        Thread t = Thread.ofPlatform().start(() -> a.exclusively(Duration.ofSeconds(20), Duration.ofSeconds(60), () -> {
            aRunning.set(true);
            aInside.countDown();
            try {
                release.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            aRunning.set(false);
            return null;
        }));
        assertTrue(aInside.await(20, TimeUnit.SECONDS));
        IllegalStateException busy = assertThrows(IllegalStateException.class,
                () -> b.exclusively(Duration.ofMillis(200), Duration.ofSeconds(60), () -> null));
        assertTrue(busy.getMessage().contains("placement lock"), busy.getMessage());
        release.countDown();
        b.exclusively(Duration.ofSeconds(20), Duration.ofSeconds(60), () -> {
            overlap.set(aRunning.get());
            return null;
        });
        t.join();
        assertTrue(!overlap.get(), "B ran only after A's change ended");
    }

    @Test
    void reports_areSeenByAll_andLeaveWithTheirRouter() {
        a.report(3, 1, () -> new long[][]{null, {1, 2, 3, 4}});
        b.report(2, 1, () -> new long[][]{null, {10, 0, 0, 0}});
        assertEquals(Map.of(a.routerId(), 3L, b.routerId(), 2L), a.acknowledged());
        assertEquals(1, a.otherLoads(1).size());
        assertEquals(10, a.otherLoads(1).getFirst()[1][0], "A sees B's load");
        assertTrue(a.otherLoads(2).isEmpty(), "load of another window is not merged");
        b.close();
        assertEquals(Map.of(a.routerId(), 3L), a.acknowledged(), "a closed router is not waited for");
    }

    private static KvSecret secret(java.nio.file.Path dir, String name) throws IOException {
        java.nio.file.Path f = java.nio.file.Files.writeString(dir.resolve(name), KvSecret.randomText());
        return KvSecret.read(f);
    }

    @Test
    void withTheTiersSecret_signedPlansAreAccepted_forgedOrForeignOnesRefused(@TempDir java.nio.file.Path dir)
            throws IOException {
        KvSecret secret = secret(dir, "s");
        HazelcastPlacementStore signer = new HazelcastPlacementStore(hz, "signed", Duration.ofSeconds(30), secret);
        HazelcastPlacementStore reader = new HazelcastPlacementStore(hz, "signed", Duration.ofSeconds(30), secret);
        HazelcastPlacementStore foreign = new HazelcastPlacementStore(hz, "signed", Duration.ofSeconds(30),
                secret(dir, "other"));
        try {
            List<SharedPlan> heard = new CopyOnWriteArrayList<>();
            reader.onPublished(heard::add);
            signer.advance(0, plan(1, "w:1"));
            assertEquals("w:1", reader.current().replicas()[1][0][0], "a router with the secret reads it");
            await().atMost(Duration.ofSeconds(20)).until(() -> heard.size() == 1);
            IllegalStateException other = assertThrows(IllegalStateException.class, foreign::current);
            assertTrue(other.getMessage().contains("a wrong MAC"), other.getMessage());

            // Someone on the tier's port writes a plan pointing at their own worker, with a valid epoch.
            hz.<String, SharedPlan>getMap(HazelcastPlacementStore.mapName("signed")).set("plan", plan(2, "evil:1"));
            IllegalStateException forged = assertThrows(IllegalStateException.class, reader::current);
            assertTrue(forged.getMessage().contains("has no MAC") && forged.getMessage().contains("refused"),
                    forged.getMessage());
            assertEquals(1, heard.size(), "the forged plan reached no listener");
        } finally {
            signer.close();
            reader.close();
            foreign.close();
        }
    }
}
