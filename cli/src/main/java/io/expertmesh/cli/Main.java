package io.expertmesh.cli;

import io.expertmesh.cli.cluster.SupervisedChild;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code expertmesh} command line. */
@Command(name = "expertmesh", mixinStandardHelpOptions = true, version = "expertmesh 0.1.0",
        description = "Expert-parallel serving for Mixture-of-Experts language models.",
        subcommands = {RunCommand.class, GenerateCommand.class, ServeCommand.class, BenchCommand.class,
                BenchModelCommand.class, CacheNodeCommand.class, WorkerCommand.class, AdminCommand.class,
                ClusterCommand.class, HealthCommand.class, PerplexityCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    /** The long-running commands, whose options also come from {@code EXPERTMESH_*} variables (containers). */
    static final List<String> ENV_CONFIGURED = List.of("serve", "worker", "cluster", "cache-node");

    public static void main(String[] args) {
        SupervisedChild.installIfSupervised(System.getenv());
        System.exit(commandLine().execute(args));
    }

    static CommandLine commandLine() {
        return commandLine(CommandLine.defaultFactory());
    }

    /** The command line with {@code factory} making the commands (tests inject a {@link GenerateCommand}). */
    static CommandLine commandLine(CommandLine.IFactory factory) {
        return commandLine(factory, System.getenv());
    }

    /** The command line reading option defaults of {@link #ENV_CONFIGURED} from {@code env}. */
    static CommandLine commandLine(CommandLine.IFactory factory, Map<String, String> env) {
        CommandLine cl = new CommandLine(new Main(), factory);
        cl.setExecutionExceptionHandler(new UserErrorHandler());
        cl.setParameterExceptionHandler(new UserErrorHandler.BadArguments());
        cl.setCaseInsensitiveEnumValuesAllowed(true); // --device CUDA, EXPERTMESH_KERNELS=Scalar
        EnvironmentDefaults defaults = new EnvironmentDefaults(env);
        for (String name : ENV_CONFIGURED) {
            cl.getSubcommands().get(name).setDefaultValueProvider(defaults);
        }
        return cl;
    }
}
