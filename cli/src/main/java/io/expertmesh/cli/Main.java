package io.expertmesh.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code expertmesh} command line. */
@Command(name = "expertmesh", mixinStandardHelpOptions = true, version = "expertmesh 0.1.0",
        description = "Expert-parallel serving for Mixture-of-Experts language models.",
        subcommands = {RunCommand.class, GenerateCommand.class, ServeCommand.class, BenchCommand.class,
                BenchModelCommand.class, CacheNodeCommand.class, WorkerCommand.class, AdminCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    static CommandLine commandLine() {
        return commandLine(CommandLine.defaultFactory());
    }

    /** The command line with {@code factory} making the commands (tests inject a {@link GenerateCommand}). */
    static CommandLine commandLine(CommandLine.IFactory factory) {
        CommandLine cl = new CommandLine(new Main(), factory);
        cl.setExecutionExceptionHandler(new UserErrorHandler());
        return cl;
    }
}
