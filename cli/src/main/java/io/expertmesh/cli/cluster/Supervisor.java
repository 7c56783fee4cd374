package io.expertmesh.cli.cluster;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Starts child processes, forwards their output with a per-child prefix, restarts a child that ends on its own as
 * its {@link RestartPolicy} allows (the same spec, after a growing wait), gives up on one that keeps crashing, and
 * stops them all in stages: SIGTERM to every live child of a stage, wait up to its grace, SIGKILL the leftovers,
 * then the next stage. A child that ends after {@link #stopAll()} began is an expected exit.
 */
public final class Supervisor implements AutoCloseable {
    private final Consumer<String> sink;
    private final Consumer<String> notices;
    private final RestartPolicy policy;
    private final List<ManagedChild> children = new CopyOnWriteArrayList<>();
    private final Map<String, CrashWindow> crashes = new ConcurrentHashMap<>();
    private final CompletableFuture<ChildExit> gaveUp = new CompletableFuture<>();
    private final ScheduledExecutorService restarts = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("supervisor-restart").factory());
    private final Object stopLock = new Object();
    private volatile boolean stopping;
    private boolean stopped;

    /** A supervisor that restarts nothing: the first child to end on its own is given up on. */
    public Supervisor(Consumer<String> sink, Consumer<String> notices) {
        this(sink, notices, RestartPolicy.never());
    }

    /**
     * @param sink    where forwarded child lines go (called from several threads; must be thread-safe)
     * @param notices where the supervisor's own messages go (a restart, a child killed after its grace)
     * @param policy  when a child that died on its own is restarted
     */
    public Supervisor(Consumer<String> sink, Consumer<String> notices, RestartPolicy policy) {
        this.sink = sink;
        this.notices = notices;
        this.policy = policy;
    }

    /** Starts {@code spec}'s process; its stdout and stderr go to the sink, merged, line by line. */
    public ManagedChild start(ChildSpec spec) throws IOException {
        // Under the stop lock: a child started while stopAll() walks the list would be missed and left running.
        synchronized (stopLock) {
            if (stopping) {
                throw new IllegalStateException("the supervisor is stopping; not starting " + spec.name());
            }
            return launch(spec);
        }
    }

    private ManagedChild launch(ChildSpec spec) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(spec.command()).redirectErrorStream(true);
        pb.environment().keySet().removeAll(spec.unsetEnv());
        pb.environment().putAll(spec.env());
        Process process = pb.start();
        Thread forwarder = Thread.ofPlatform().daemon().name("forward-" + spec.name())
                .unstarted(new LineForwarder(spec.name(), process.getInputStream(), sink));
        ManagedChild child = new ManagedChild(spec, process, forwarder);
        children.add(child);
        forwarder.start();
        process.onExit().thenRun(() -> exited(child));
        return child;
    }

    private void exited(ManagedChild child) {
        try {
            // Its last lines (often the reason it died) come before anyone reports the exit.
            child.forwarder().join(Duration.ofSeconds(2));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        ChildExit exit = new ChildExit(child.name(), child.process().exitValue());
        if (!stopping) {
            crashed(child.spec(), exit);
        }
        child.exit().complete(exit);
    }

    /** A child ended on its own: schedule its restart, or give up on it when it is crash-looping. */
    private void crashed(ChildSpec spec, ChildExit exit) {
        int recent = crashes.computeIfAbsent(spec.name(), n -> new CrashWindow(policy.window()))
                .record(System.nanoTime());
        if (!policy.restarts(recent)) {
            if (policy.maxRestarts() > 0) {
                notices.accept(spec.name() + " exited unexpectedly (exit code " + exit.exitCode() + "; " + recent
                        + " exits within " + policy.window().toSeconds() + " s); giving up on it");
            }
            gaveUp.complete(exit);
            return;
        }
        Duration wait = policy.backoff(recent);
        notices.accept(spec.name() + " exited unexpectedly (exit code " + exit.exitCode() + "); restarting it in "
                + wait.toMillis() + " ms (restart " + recent + " of at most " + policy.maxRestarts() + " within "
                + policy.window().toSeconds() + " s)");
        restarts.schedule(() -> restart(spec), wait.toNanos(), TimeUnit.NANOSECONDS);
    }

    private void restart(ChildSpec spec) {
        synchronized (stopLock) {
            if (stopping) {
                return; // stopAll() began during the wait
            }
            children.removeIf(c -> c.name().equals(spec.name()) && !c.isAlive());
            try {
                launch(spec);
            } catch (IOException e) {
                notices.accept("cannot restart " + spec.name() + ": " + e.getMessage() + "; giving up on it");
                gaveUp.complete(new ChildExit(spec.name(), -1));
            }
        }
    }

    /**
     * Completes with the child the supervisor gave up on: the first one to end on its own under
     * {@link RestartPolicy#never()}, else the first to crash more often than its policy allows. Exits after
     * {@link #stopAll()} began never count.
     */
    public CompletableFuture<ChildExit> gaveUp() {
        return gaveUp;
    }

    /** The current process of every child (after a restart, the new one). */
    public List<ManagedChild> children() {
        return List.copyOf(children);
    }

    /** The current process of the child named {@code name}, if it was started. */
    public java.util.Optional<ManagedChild> child(String name) {
        return children.stream().filter(c -> c.name().equals(name)).reduce((first, later) -> later);
    }

    /**
     * Stops every child, stage by stage (see {@link ChildSpec#stopStage()}); returns when all have ended. Safe to
     * call from several threads (a shutdown hook and the main thread): later callers wait for the first.
     */
    public void stopAll() throws InterruptedException {
        stopping = true;
        restarts.shutdownNow(); // pending restarts are dropped, not run into a stopping cluster
        synchronized (stopLock) {
            if (stopped) {
                return;
            }
            TreeMap<Integer, List<ManagedChild>> stages = new TreeMap<>();
            for (ManagedChild c : children) {
                stages.computeIfAbsent(c.spec().stopStage(), s -> new ArrayList<>()).add(c);
            }
            for (List<ManagedChild> stage : stages.values()) {
                stopStage(stage);
            }
            stopped = true;
        }
    }

    private void stopStage(List<ManagedChild> stage) throws InterruptedException {
        for (ManagedChild c : stage) {
            if (c.isAlive()) {
                // SIGTERM: the child's shutdown hooks run (a router drains). Through the ProcessHandle because
                // Process.destroy() also closes our end of its output pipe, losing the lines it prints while it stops.
                c.process().toHandle().destroy();
            }
        }
        for (ManagedChild c : stage) {
            if (!c.process().waitFor(c.spec().stopGrace().toMillis(), TimeUnit.MILLISECONDS)) {
                notices.accept(c.name() + " did not exit within " + c.spec().stopGrace().toSeconds()
                        + " s of SIGTERM; killing it");
                c.process().toHandle().destroyForcibly();
                c.process().waitFor(10, TimeUnit.SECONDS);
            }
        }
        for (ManagedChild c : stage) {
            try {
                c.exit().get(5, TimeUnit.SECONDS); // the last forwarded lines are out
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                // forwarding is best effort once the process is gone
            }
        }
    }

    /** {@link #stopAll()}. */
    @Override
    public void close() throws InterruptedException {
        stopAll();
    }
}
