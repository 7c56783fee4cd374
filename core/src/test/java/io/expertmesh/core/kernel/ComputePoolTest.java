package io.expertmesh.core.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ComputePoolTest {

    @Test
    void parallelFor_manyTaskCounts_runsEveryTaskExactlyOnce() {
        try (ComputePool pool = ComputePool.create(3)) {
            for (int tasks : new int[] {0, 1, 2, 3, 7, 64, 1000}) {
                AtomicIntegerArray runs = new AtomicIntegerArray(Math.max(tasks, 1));
                pool.parallelFor(tasks, i -> runs.incrementAndGet(i));
                for (int i = 0; i < tasks; i++) {
                    assertEquals(1, runs.get(i), "task " + i + " of " + tasks);
                }
            }
        }
    }

    @Test
    void parallelFor_moreTasksThanOneRound_runsEveryTaskExactlyOnce() {
        try (ComputePool pool = ComputePool.create(2)) {
            int tasks = ComputePool.MAX_TASKS_PER_ROUND * 2 + 5;
            AtomicIntegerArray runs = new AtomicIntegerArray(tasks);
            pool.parallelFor(tasks, i -> runs.incrementAndGet(i));
            for (int i = 0; i < tasks; i++) {
                assertEquals(1, runs.get(i), "task " + i);
            }
            // A task that throws in the first round: the later rounds still run, then the exception comes out.
            AtomicIntegerArray again = new AtomicIntegerArray(tasks);
            IllegalStateException boom = new IllegalStateException("boom");
            assertSame(boom, assertThrows(IllegalStateException.class, () -> pool.parallelFor(tasks, i -> {
                again.incrementAndGet(i);
                if (i == 7) {
                    throw boom;
                }
            })));
            for (int i = 0; i < tasks; i++) {
                assertEquals(1, again.get(i), "task " + i + " after a throw");
            }
        }
    }

    /**
     * Each participant runs what it runs of its own range as that range's first tasks in order (the caller owns the
     * first range, worker {@code i} the range {@code i}), whoever took the rest: the order that keeps a matmul's
     * memory stream going. Which tasks a thread steals depends on timing; this order does not.
     */
    @Test
    void parallelFor_ownRangeRunsFrontToBack() {
        int threads = 3;
        try (ComputePool pool = ComputePool.create(threads)) {
            for (int tasks : new int[] {2, 5, 12, 64}) {
                for (int call = 0; call < 200; call++) {
                    Map<String, List<Integer>> ran = new ConcurrentHashMap<>();
                    String caller = Thread.currentThread().getName();
                    pool.parallelFor(tasks, i -> {
                        ran.computeIfAbsent(Thread.currentThread().getName(),
                                n -> Collections.synchronizedList(new ArrayList<>())).add(i);
                        Thread.onSpinWait();
                    });
                    for (var e : ran.entrySet()) {
                        int p = e.getKey().equals(caller) ? 0
                                : Integer.parseInt(e.getKey().substring(e.getKey().lastIndexOf('-') + 1));
                        int from = tasks * p / threads;
                        int to = tasks * (p + 1) / threads;
                        List<Integer> own = e.getValue().stream().filter(i -> i >= from && i < to).toList();
                        for (int k = 0; k < own.size(); k++) {
                            assertEquals(from + k, own.get(k), e.getKey() + " ran " + e.getValue() + " of " + tasks);
                        }
                    }
                }
            }
        }
    }

    @Test
    void parallelFor_tasksThatWaitForEachOther_runOnDistinctThreads() {
        try (ComputePool pool = ComputePool.create(3)) {
            CountDownLatch allStarted = new CountDownLatch(3);
            Set<String> names = ConcurrentHashMap.newKeySet();
            assertTimeoutPreemptively(Duration.ofSeconds(20), () -> pool.parallelFor(3, i -> {
                names.add(Thread.currentThread().getName());
                allStarted.countDown();
                try {
                    assertTrue(allStarted.await(10, TimeUnit.SECONDS), "tasks did not run concurrently");
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }));
            assertEquals(3, names.size());
            assertTrue(names.stream().filter(n -> n.startsWith("expertmesh-compute-")).count() == 2, names::toString);
        }
    }

    @Test
    void parallelFor_taskThrows_exceptionReachesCallerAndPoolStaysUsable() {
        try (ComputePool pool = ComputePool.create(2)) {
            IllegalStateException boom = new IllegalStateException("boom");
            IllegalStateException thrown = assertThrows(IllegalStateException.class,
                    () -> pool.parallelFor(16, i -> {
                        if (i == 11) {
                            throw boom;
                        }
                    }));
            assertSame(boom, thrown);
            AtomicInteger count = new AtomicInteger();
            pool.parallelFor(16, i -> count.incrementAndGet());
            assertEquals(16, count.get());
        }
    }

    @Test
    void parallelFor_errorInTask_propagatesAsIs() {
        try (ComputePool pool = ComputePool.create(2)) {
            assertThrows(AssertionError.class, () -> pool.parallelFor(4, i -> {
                throw new AssertionError("task " + i);
            }));
        }
    }

    @Test
    void parallelFor_nestedCall_runsInlineWithoutDeadlock() {
        try (ComputePool pool = ComputePool.create(2)) {
            AtomicInteger inner = new AtomicInteger();
            assertTimeoutPreemptively(Duration.ofSeconds(20), () ->
                    pool.parallelFor(8, i -> pool.parallelFor(5, j -> inner.incrementAndGet())));
            assertEquals(40, inner.get());
        }
    }

    @Test
    void parallelFor_tenThousandRapidCalls_allCompleteWithoutHang() {
        try (ComputePool pool = ComputePool.create(3)) {
            AtomicLong sum = new AtomicLong();
            assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                for (int call = 0; call < 10_000; call++) {
                    int tasks = 1 + call % 5;
                    pool.parallelFor(tasks, i -> sum.addAndGet(i + 1));
                }
            });
            long expected = 0;
            for (int call = 0; call < 10_000; call++) {
                int tasks = 1 + call % 5;
                expected += (long) tasks * (tasks + 1) / 2;
            }
            assertEquals(expected, sum.get());
        }
    }

    @Test
    void parallelFor_parkedWorkers_wakeForTheNextCall() throws InterruptedException {
        try (ComputePool pool = ComputePool.create(2, 0)) {
            for (int round = 0; round < 5; round++) {
                Thread.sleep(20);
                AtomicIntegerArray runs = new AtomicIntegerArray(10);
                assertTimeoutPreemptively(Duration.ofSeconds(20), () -> pool.parallelFor(10, runs::incrementAndGet));
                for (int i = 0; i < 10; i++) {
                    assertEquals(1, runs.get(i));
                }
            }
        }
    }

    @Test
    void parallelFor_twoCallerThreadsAtOnce_bothComplete() throws Exception {
        try (ComputePool pool = ComputePool.create(2)) {
            AtomicLong a = new AtomicLong();
            AtomicLong b = new AtomicLong();
            Thread other = Thread.ofPlatform().start(() -> {
                for (int k = 0; k < 2000; k++) {
                    pool.parallelFor(4, i -> b.incrementAndGet());
                }
            });
            for (int k = 0; k < 2000; k++) {
                pool.parallelFor(4, i -> a.incrementAndGet());
            }
            other.join(30_000);
            assertFalse(other.isAlive());
            assertEquals(8000, a.get());
            assertEquals(8000, b.get());
        }
    }

    @Test
    void close_stopsWorkersAndRejectsLaterCalls() throws InterruptedException {
        ComputePool pool = ComputePool.create(3);
        Set<Thread> threads = ConcurrentHashMap.newKeySet();
        CountDownLatch allStarted = new CountDownLatch(3);
        pool.parallelFor(3, i -> {
            threads.add(Thread.currentThread());
            allStarted.countDown();
            try {
                allStarted.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        threads.remove(Thread.currentThread());
        assertEquals(2, threads.size());
        assertTrue(threads.stream().allMatch(Thread::isDaemon));
        pool.close();
        for (Thread t : threads) {
            t.join(5_000);
            assertFalse(t.isAlive(), t.getName());
        }
        assertThrows(IllegalStateException.class, () -> pool.parallelFor(2, i -> { }));
    }

    @Test
    void create_badArguments_rejected() {
        assertThrows(IllegalArgumentException.class, () -> ComputePool.create(0));
        assertThrows(IllegalArgumentException.class, () -> ComputePool.create(2, -1));
        try (ComputePool pool = ComputePool.create(4)) {
            assertEquals(4, pool.threads());
        }
    }
}
