package io.expertmesh.cli.cluster;

import java.util.Map;
import java.util.Optional;

/**
 * The child side of the supervision: a process started by {@code expertmesh cluster} gets
 * {@value #PARENT_PID_ENV} in its environment and then (1) ignores SIGINT, because Ctrl-C in a terminal reaches the
 * whole process group while the supervisor must stop its children in order (router first, so it can drain while
 * the workers still answer), and (2) exits when the supervisor is gone, even if it was SIGKILLed, so no worker
 * is left holding a port.
 */
public final class SupervisedChild {
    public static final String PARENT_PID_ENV = "EXPERTMESH_SUPERVISOR_PID";

    private SupervisedChild() {
    }

    /** Installs both behaviours when {@code env} names a supervisor; returns its pid, or empty when there is none. */
    public static Optional<Long> installIfSupervised(Map<String, String> env) {
        String value = env.get(PARENT_PID_ENV);
        if (value == null || value.isBlank()) {
            return Optional.empty();
        }
        long pid;
        try {
            pid = Long.parseLong(value.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(PARENT_PID_ENV + " must be a process id, got '" + value + "'");
        }
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), sun.misc.SignalHandler.SIG_IGN);
        Optional<ProcessHandle> parent = ProcessHandle.of(pid);
        if (parent.isEmpty()) {
            exitOrphaned(pid);
        } else {
            parent.get().onExit().thenRun(() -> exitOrphaned(pid));
        }
        return Optional.of(pid);
    }

    private static void exitOrphaned(long pid) {
        System.err.println("expertmesh: supervisor process " + pid + " is gone; exiting");
        // From a fresh thread: System.exit runs the shutdown hooks and must not block the thread that noticed.
        Thread.ofPlatform().start(() -> System.exit(1));
    }
}
