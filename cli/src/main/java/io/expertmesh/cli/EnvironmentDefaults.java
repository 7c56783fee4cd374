package io.expertmesh.cli;

import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.IDefaultValueProvider;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Option defaults from the environment, for containers: {@code --foo-bar} of a command takes
 * {@code EXPERTMESH_FOO_BAR} when the flag is not given (a flag on the command line wins; a boolean flag takes
 * {@code true} or {@code false}). Installed on the long-running commands: serve, worker, cluster, cache-node.
 */
final class EnvironmentDefaults implements IDefaultValueProvider {
    static final String PREFIX = "EXPERTMESH_";

    private final Map<String, String> env;

    EnvironmentDefaults(Map<String, String> env) {
        this.env = Map.copyOf(env);
    }

    @Override
    public String defaultValue(ArgSpec arg) {
        if (!(arg instanceof OptionSpec option) || option.usageHelp() || option.versionHelp()) {
            return null;
        }
        String value = env.get(variable(option));
        return value == null || value.isBlank() ? null : value.strip();
    }

    /** {@code --kv-cache-mb} → {@code EXPERTMESH_KV_CACHE_MB}. */
    static String variable(OptionSpec option) {
        String name = option.longestName().replaceFirst("^-+", "");
        return PREFIX + name.replace('-', '_').toUpperCase(Locale.ROOT);
    }

    /** The variables {@code spec}'s options read (help and version flags excluded). */
    static Set<String> variables(CommandSpec spec) {
        Set<String> names = new LinkedHashSet<>();
        for (OptionSpec o : spec.options()) {
            if (!o.usageHelp() && !o.versionHelp()) {
                names.add(variable(o));
            }
        }
        return names;
    }
}
