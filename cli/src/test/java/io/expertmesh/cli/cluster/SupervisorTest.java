package io.expertmesh.cli.cluster;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

    private void awaitLine(String line) {
        await("line '" + line + "'").atMost(Duration.ofSeconds(30)).until(() -> lines.contains(line));
    }

    private long count(String line) {
        return lines.stream().filter(line::equals).count();
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
    void gaveUp_noRestartPolicy_firstChildToDieReportedByNameAndCode_othersStoppedBySigterm() throws Exception {
        supervisor.start(spec("worker-0", 1, Duration.ofSeconds(5), "serve", "0"));
        supervisor.start(spec("worker-1", 1, Duration.ofSeconds(5), "exit", "3", "300"));
        ChildExit died = supervisor.gaveUp().get(20, TimeUnit.SECONDS);
        assertEquals(new ChildExit("worker-1", 3), died);
        assertTrue(lines.contains("[worker-1] exiting with 3"), "its last line comes before the report: " + lines);
        supervisor.stopAll();
        assertTrue(supervisor.children().stream().noneMatch(ManagedChild::isAlive));
        assertTrue(lines.contains("[worker-0] term"), "stopped with SIGTERM, its shutdown hook ran: " + lines);
        assertEquals(died, supervisor.gaveUp().get(), "the stop is not an unexpected exit");
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
        assertFalse(supervisor.gaveUp().isDone(), "exits during stopAll are expected");
    }

    @Test
    void stopAll_childIgnoresSigterm_killedAfterItsGrace() throws Exception {
        // A grace long enough for a loaded machine to run the child's shutdown hook (which prints "term").
        ManagedChild c = supervisor.start(spec("cache-0", 0, Duration.ofSeconds(3), "stuck"));
        awaitLine("[cache-0] up");
        supervisor.stopAll();
        assertFalse(c.isAlive());
        assertEquals(137, c.exit().get(5, TimeUnit.SECONDS).exitCode(), "SIGKILL");
        assertTrue(lines.contains("[cache-0] term"), "SIGTERM came first: " + lines);
        assertTrue(notices.stream().anyMatch(n -> n.equals("cache-0 did not exit within 3 s of SIGTERM; killing it")),
                notices.toString());
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
        Process fakeSupervisor = new ProcessBuilder("sleep", "600").start();
        others.add(fakeSupervisor);
        ManagedChild c = supervisor.start(new ChildSpec("worker-0", child("supervised"),
                Map.of(SupervisedChild.PARENT_PID_ENV, String.valueOf(fakeSupervisor.pid())), Set.of(), 0,
                Duration.ofSeconds(5)));
        awaitLine("[worker-0] up");
        assertEquals(0, new ProcessBuilder("kill", "-INT", String.valueOf(c.pid())).start().waitFor());
        // The JVM's signal dispatcher takes pending signals in ascending number: once SIGQUIT's thread dump is out,
        // SIGINT (2 < 3) has been handled, and a JVM that honoured it is already on its way out with 130.
        assertEquals(0, new ProcessBuilder("kill", "-QUIT", String.valueOf(c.pid())).start().waitFor());
        await("SIGQUIT's thread dump").atMost(Duration.ofSeconds(30))
                .until(() -> lines.stream().anyMatch(l -> l.startsWith("[worker-0] Full thread dump")));
        fakeSupervisor.destroy();
        ChildExit exit = c.exit().get(20, TimeUnit.SECONDS);
        assertEquals(1, exit.exitCode(), "ended by its supervisor's exit, not by SIGINT (130): the Ctrl-C to the "
                + "process group is the supervisor's to handle");
        assertTrue(lines.stream().anyMatch(l -> l.contains("supervisor process " + fakeSupervisor.pid()
                + " is gone")), lines.toString());
    }

    @Test
    void restart_childCrashesOnce_restartedWithTheSameSpecAndNotGivenUp(@TempDir Path dir) throws Exception {
        Supervisor restarting = new Supervisor(lines::add, notices::add,
                new RestartPolicy(3, Duration.ofSeconds(60), Duration.ofMillis(50), Duration.ofMillis(200)));
        try {
            ManagedChild first = restarting.start(spec("worker-1", 1, Duration.ofSeconds(5), "crash-once",
                    dir.resolve("crashed").toString()));
            assertEquals(3, first.exit().get(30, TimeUnit.SECONDS).exitCode());
            awaitLine("[worker-1] up again");
            ManagedChild second = restarting.child("worker-1").orElseThrow();
            assertTrue(second.pid() != first.pid() && second.isAlive(), "a new process of the same child");
            assertFalse(restarting.gaveUp().isDone(), "one crash is within the policy");
            assertTrue(notices.stream().anyMatch(n -> n.startsWith("worker-1 exited unexpectedly (exit code 3); "
                    + "restarting it in 50 ms")), notices.toString());
            assertEquals(List.of(second), restarting.children(), "only the live process is listed");
            restarting.stopAll();
            assertTrue(lines.contains("[worker-1] term"), "the restarted child is stopped with the rest: " + lines);
            assertFalse(restarting.gaveUp().isDone());
        } finally {
            restarting.stopAll();
        }
    }

    @Test
    void restart_childCrashLoops_givenUpAfterMaxRestartsNamingIt_othersStillRunning() throws Exception {
        Supervisor restarting = new Supervisor(lines::add, notices::add,
                new RestartPolicy(2, Duration.ofSeconds(600), Duration.ofMillis(10), Duration.ofMillis(40)));
        try {
            ManagedChild healthy = restarting.start(spec("worker-0", 1, Duration.ofSeconds(5), "serve", "0"));
            restarting.start(spec("worker-1", 1, Duration.ofSeconds(5), "exit", "3", "0"));
            ChildExit gaveUp = restarting.gaveUp().get(60, TimeUnit.SECONDS);
            assertEquals(new ChildExit("worker-1", 3), gaveUp);
            assertEquals(3, count("[worker-1] exiting with 3"), "started, then restarted twice: " + lines);
            assertTrue(notices.stream().anyMatch(n -> n.contains("restarting it in 10 ms")), notices.toString());
            assertTrue(notices.stream().anyMatch(n -> n.contains("restarting it in 20 ms")),
                    "the wait doubles: " + notices);
            assertTrue(notices.getLast().startsWith("worker-1 exited unexpectedly (exit code 3; 3 exits within "
                    + "600 s); giving up on it"), notices.toString());
            assertTrue(healthy.isAlive(), "giving up is the caller's cue to stop; the supervisor stops nothing itself");
        } finally {
            restarting.stopAll();
        }
    }

    @Test
    void stopAll_duringARestartWait_theRestartIsDropped() throws Exception {
        Supervisor restarting = new Supervisor(lines::add, notices::add,
                new RestartPolicy(3, Duration.ofSeconds(60), Duration.ofSeconds(30), Duration.ofSeconds(30)));
        ManagedChild c = restarting.start(spec("worker-1", 1, Duration.ofSeconds(5), "exit", "3", "0"));
        c.exit().get(30, TimeUnit.SECONDS);
        await().atMost(Duration.ofSeconds(10)).until(() -> notices.stream().anyMatch(n -> n.contains("restarting")));
        restarting.stopAll();
        assertEquals(List.of(c), restarting.children(), "no process started after the stop");
        assertEquals(1, count("[worker-1] exiting with 3"));
        assertThrowsIllegalState(() -> restarting.start(spec("late", 0, Duration.ZERO, "lines", "1")));
    }

    private static void assertThrowsIllegalState(org.junit.jupiter.api.function.Executable e) {
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, e);
    }

    @Test
    void childSpec_badValues_rejectedWithTheReason() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ChildSpec.of("w", List.of(), Duration.ZERO));
        assertTrue(e.getMessage().contains("needs a command"), e.getMessage());
    }
}
