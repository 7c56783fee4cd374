package io.expertmesh.cli;

import io.expertmesh.core.safetensors.ModelLoadException;
import io.expertmesh.kvcache.KvStoreStartException;
import java.io.IOException;
import java.io.UncheckedIOException;
import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.ParseResult;

/**
 * Turns errors a user can fix (bad arguments, a bad model directory) into one clear line and exit code 2,
 * instead of a stack trace. Anything else is a bug and keeps its stack trace.
 */
final class UserErrorHandler implements IExecutionExceptionHandler {
    static final int USAGE_ERROR = 2;

    @Override
    public int handleExecutionException(Exception e, CommandLine cl, ParseResult parsed) throws Exception {
        if (e instanceof IllegalArgumentException || e instanceof ModelLoadException || e instanceof IOException
                || e instanceof UncheckedIOException || e instanceof KvStoreStartException) {
            cl.getErr().println("expertmesh " + cl.getCommandName() + ": " + e.getMessage());
            return USAGE_ERROR;
        }
        throw e;
    }

    /**
     * Arguments picocli could not parse (an unknown option, a value that is not a number or not one of an enum's
     * names): one line and exit 2 as well, with where to look, instead of the whole usage text.
     */
    static final class BadArguments implements CommandLine.IParameterExceptionHandler {
        @Override
        public int handleParseException(CommandLine.ParameterException e, String[] args) {
            CommandLine cl = e.getCommandLine();
            String command = cl.getCommandSpec().qualifiedName(" ");
            cl.getErr().println(command + ": " + e.getMessage() + " (see " + command + " --help)");
            cl.getErr().flush();
            return USAGE_ERROR;
        }
    }
}
