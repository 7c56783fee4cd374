package io.expertmesh.cli.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link Supervisor} with real child JVMs ({@link TestChild}). */
class SupervisorTest {
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final List<String> notices = new CopyOnWriteArrayList<>();
    private final Supervisor supervisor = new Supervisor(lines::add, notices::add);
    private final List<Process> others = new ArrayList<>();

    @AfterEach
    void tearDown() throws InterruptedException {
        supervisor.stopAll();
        for (Process p : others) {
            p.destroyForcibly();
        }
    }

    private static List<String> child(String... args) {
        return JavaCommand.of(TestChild.class.getName(), List.of(args));
    }

    private ChildSpec spec(String name, int stage, Duration grace, String... args) {
        return new ChildSpec(name, child(args), Map.of(), Set.of(), stage, grace);
    }

    private void awaitLine(String line) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!lines.contains(line)) {
            if (System.nanoTime() > end) {
                throw new AssertionError("no line '" + line + "' in " + lines);
            }
            Thread.sleep(20);
        }
    }

    @Test
    void start_childPrints_eachLineForwardedWithItsPrefixInOrder() throws Exception {
        ManagedChild c = supervisor.start(spec("worker-0", 0, Duration.ofSeconds(5), "lines", "3"));
        ChildExit exit = c.exit().get(20, TimeUnit.SECONDS);
        assertEquals(new ChildExit("worker-0", 0), exit);
        assertEquals(List.of("[worker-0] line 0", "[worker-0] line 1", "[worker-0] line 2"),
                lines.stream().filter(l -> l.contains("line")).toList());
        assertTrue(lines.contains("[worker-0] done on stderr"), "stderr is forwarded too: " + lines);
    }

    @Test
    void unexpectedExit_childDiesOnItsOwn_reportedByNameAndCode_othersStoppedBySigterm() throws Exception {
        supervisor.start(spec("worker-0", 1, Duration.ofSeconds(5), "serve", "0"));
        supervisor.start(spec("worker-1", 1, Duration.ofSeconds(5), "exit", "3", "300"));
        ChildExit died = supervisor.unexpectedExit().get(20, TimeUnit.SECONDS);
        assertEquals(new ChildExit("worker-1", 3), died);
        assertTrue(lines.contains("[worker-1] exiting with 3"), "its last line comes before the report: " + lines);
        supervisor.stopAll();
        assertTrue(supervisor.children().stream().noneMatch(ManagedChild::isAlive));
        assertTrue(lines.contains("[worker-0] term"), "stopped with SIGTERM, its shutdown hook ran: " + lines);
        assertEquals(died, supervisor.unexpectedExit().get(), "the stop is not an unexpected exit");
    }

    @Test
    void stopAll_twoStages_secondStageSignalledOnlyAfterTheFirstExited() throws Exception {
        supervisor.start(spec("worker-0", 1, Duration.ofSeconds(5), "serve", "0"));
        supervisor.start(spec("router", 0, Duration.ofSeconds(10), "serve", "500"));
        awaitLine("[worker-0] up");
        awaitLine("[router] up");
        supervisor.stopAll();
        int routerBye = lines.indexOf("[router] bye");
        int workerTerm = lines.indexOf("[worker-0] term");
        assertTrue(routerBye >= 0 && workerTerm > routerBye,
                "the router drained and exited before the worker got SIGTERM: " + lines);
        assertFalse(supervisor.unexpectedExit().isDone(), "exits during stopAll are expected");
    }

    @Test
    void stopAll_childIgnoresSigterm_killedAfterItsGrace() throws Exception {
        ManagedChild c = supervisor.start(spec("cache-0", 0, Duration.ofMillis(500), "stuck"));
        awaitLine("[cache-0] up");
        long start = System.nanoTime();
        supervisor.stopAll();
        long tookMillis = (System.nanoTime() - start) / 1_000_000;
        assertFalse(c.isAlive());
        assertEquals(137, c.exit().get(5, TimeUnit.SECONDS).exitCode(), "SIGKILL");
        assertTrue(lines.contains("[cache-0] term"), lines.toString());
        assertTrue(notices.stream().anyMatch(n -> n.contains("cache-0") && n.contains("killing")), notices.toString());
        assertTrue(tookMillis < 10_000, "killed after the grace, not after the 10 s wait: " + tookMillis + " ms");
    }

    @Test
    void start_afterStopAll_refused() throws Exception {
        supervisor.stopAll();
        try {
            supervisor.start(spec("late", 0, Duration.ZERO, "lines", "1"));
            throw new AssertionError("started a child after stopAll");
        } catch (IllegalStateException expected) {
            assertTrue(expected.getMessage().contains("late"));
        }
    }

    @Test
    void supervisedChild_ignoresSigint_andExitsWhenItsSupervisorIsGone() throws Exception {
        Process fakeSupervisor = new ProcessBuilder("sleep", "3").start();
        others.add(fakeSupervisor);
        ManagedChild c = supervisor.start(new ChildSpec("worker-0", child("supervised"),
                Map.of(SupervisedChild.PARENT_PID_ENV, String.valueOf(fakeSupervisor.pid())), Set.of(), 0,
                Duration.ofSeconds(5)));
        awaitLine("[worker-0] up");
        assertEquals(0, new ProcessBuilder("kill", "-INT", String.valueOf(c.pid())).start().waitFor());
        Thread.sleep(500);
        assertTrue(c.isAlive(), "SIGINT (Ctrl-C to the process group) is the supervisor's to handle");
        assertTrue(fakeSupervisor.waitFor(10, TimeUnit.SECONDS));
        ChildExit exit = c.exit().get(20, TimeUnit.SECONDS);
        assertEquals(1, exit.exitCode());
        assertTrue(lines.stream().anyMatch(l -> l.contains("supervisor process " + fakeSupervisor.pid()
                + " is gone")), lines.toString());
    }

    @Test
    void childSpec_badValues_rejectedWithTheReason() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ChildSpec.of("w", List.of(), Duration.ZERO));
        assertTrue(e.getMessage().contains("needs a command"), e.getMessage());
    }
}
