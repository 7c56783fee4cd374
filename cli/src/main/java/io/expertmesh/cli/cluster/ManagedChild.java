package io.expertmesh.cli.cluster;

import java.util.concurrent.CompletableFuture;

/** A started child of a {@link Supervisor}: its spec, its process and the thread forwarding its output. */
public final class ManagedChild {
    private final ChildSpec spec;
    private final Process process;
    private final Thread forwarder;
    private final CompletableFuture<ChildExit> exit = new CompletableFuture<>();

    ManagedChild(ChildSpec spec, Process process, Thread forwarder) {
        this.spec = spec;
        this.process = process;
        this.forwarder = forwarder;
    }

    public String name() {
        return spec.name();
    }

    public ChildSpec spec() {
        return spec;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Completes when the process has ended and its last lines have been forwarded. */
    public CompletableFuture<ChildExit> exit() {
        return exit;
    }

    Process process() {
        return process;
    }

    Thread forwarder() {
        return forwarder;
    }
}
