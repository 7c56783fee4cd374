package io.expertmesh.deploy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/** Where the deployment files are, and what the command line accepts. */
final class DeployFiles {
    /** The deploy/ directory (the module's base directory when Maven runs the tests). */
    static final Path ROOT = locate();

    /** Variables the processes read that are not options (see the README's command line section). */
    static final Set<String> NON_OPTION_VARIABLES = Set.of("EXPERTMESH_LOG_LEVEL", "EXPERTMESH_CACHE",
            "EXPERTMESH_JAVA_OPTS");

    private DeployFiles() {
    }

    private static Path locate() {
        Path here = Path.of("").toAbsolutePath();
        for (Path p : List.of(here, here.resolve("deploy"))) {
            if (Files.isDirectory(p.resolve("k8s")) && Files.isDirectory(p.resolve("compose"))) {
                return p;
            }
        }
        throw new IllegalStateException("deploy/ not found from " + here);
    }

    static List<Path> yamlFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml")).sorted().toList();
        }
    }

    /** The {@code EXPERTMESH_*} variables {@code expertmesh <command>} reads as option defaults. */
    static Set<String> optionVariables(String command) {
        CommandLine cl = new CommandLine(new io.expertmesh.cli.Main());
        CommandLine sub = cl.getSubcommands().get(command);
        if (sub == null) {
            throw new AssertionError("no expertmesh command '" + command + "'; commands: " + cl.getSubcommands().keySet());
        }
        Set<String> names = new TreeSet<>();
        for (OptionSpec o : sub.getCommandSpec().options()) {
            if (!o.usageHelp() && !o.versionHelp()) {
                names.add("EXPERTMESH_" + o.longestName().replaceFirst("^-+", "").replace('-', '_')
                        .toUpperCase(Locale.ROOT));
            }
        }
        return names;
    }

    /** The problems with {@code env} given to {@code expertmesh <command>}: variables no option reads. */
    static List<String> unknownVariables(String where, String command, Map<String, ?> env) {
        Set<String> known = optionVariables(command);
        List<String> problems = new ArrayList<>();
        for (String name : env.keySet()) {
            if (name.startsWith("EXPERTMESH_") && !known.contains(name) && !NON_OPTION_VARIABLES.contains(name)) {
                problems.add(where + ": " + name + " is not an option of 'expertmesh " + command + "' (it reads "
                        + known + ")");
            }
        }
        return problems;
    }
}
