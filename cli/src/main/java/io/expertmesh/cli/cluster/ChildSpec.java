package io.expertmesh.cli.cluster;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * One child process of a {@link Supervisor}.
 *
 * @param name      the prefix of its forwarded lines ({@code worker-0}, {@code router}) and its name in messages
 * @param command   the command line (program first)
 * @param env       variables set in its environment on top of the supervisor's
 * @param unsetEnv  variables of the supervisor's environment it must not inherit
 * @param stopStage the order of the stop: children of stage 0 are stopped (and waited for) before stage 1, …
 * @param stopGrace how long it may take to exit after SIGTERM before it is killed
 */
public record ChildSpec(String name, List<String> command, Map<String, String> env, Set<String> unsetEnv,
                        int stopStage, Duration stopGrace) {
    public ChildSpec {
        Objects.requireNonNull(name, "name");
        if (name.isBlank()) {
            throw new IllegalArgumentException("a child needs a name");
        }
        if (command == null || command.isEmpty()) {
            throw new IllegalArgumentException("child " + name + " needs a command");
        }
        if (stopStage < 0) {
            throw new IllegalArgumentException("stopStage must be >= 0, got " + stopStage);
        }
        if (stopGrace == null || stopGrace.isNegative()) {
            throw new IllegalArgumentException("stopGrace must be >= 0");
        }
        command = List.copyOf(command);
        env = Map.copyOf(env);
        unsetEnv = Set.copyOf(unsetEnv);
    }

    /** A child with no environment changes, stopped in stage 0 with {@code stopGrace}. */
    public static ChildSpec of(String name, List<String> command, Duration stopGrace) {
        return new ChildSpec(name, command, Map.of(), Set.of(), 0, stopGrace);
    }
}
