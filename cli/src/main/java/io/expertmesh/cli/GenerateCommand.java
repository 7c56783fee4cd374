package io.expertmesh.cli;

import io.expertmesh.client.ClientConfig;
import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.client.ExpertMeshException;
import io.expertmesh.client.GenerateStream;
import io.expertmesh.proto.inference.v1.FinishReason;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.Usage;
import io.grpc.Status;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code expertmesh generate}: a completion from a running router over gRPC, printed like {@code run}. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate on a running router over gRPC and stream the completion (output as for run).",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:finished (stop or length)",
            "2:bad arguments, or the router rejected the request (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, "
                    + "UNAUTHENTICATED, PERMISSION_DENIED, ...)",
            "3:the router could not be reached or failed (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...), "
                    + "or it ended the generation as cancelled or error"})
final class GenerateCommand implements Callable<Integer> {
    static final int REJECTED = UserErrorHandler.USAGE_ERROR;
    static final int SERVER_ERROR = 3;

    /** Makes the client; tests replace it with one over an in-process channel. */
    interface Connector {
        ExpertMeshClient connect(List<String> targets, ClientConfig config);
    }

    @Option(names = "--target", required = true, split = ",", paramLabel = "HOST:PORT",
            description = "The router's address. Several routers: comma-separated or --target repeated (calls are "
                    + "spread round robin, and one refused before its first token is sent to the next); or one "
                    + "dns:///NAME:PORT whose name resolves to several.")
    List<String> targets;
    @Mixin
    PromptOptions prompt = new PromptOptions();
    @Mixin
    SamplingOptions sampling = new SamplingOptions();
    @Mixin
    ClientSecurityOptions security = new ClientSecurityOptions();

    @Option(names = "--json", description = "One JSON object per token per line, then a summary line.")
    boolean json;

    @Option(names = "--deadline-ms", paramLabel = "MS",
            description = "Give up after MS milliseconds (exit 3); the router stops the generation (default: none).")
    Long deadlineMs;

    @Spec
    CommandSpec spec;

    private final Connector connector;

    GenerateCommand() {
        this((targets, config) -> ExpertMeshClient.builder(targets).config(config).build());
    }

    GenerateCommand(Connector connector) {
        this.connector = connector;
    }

    @Override
    public Integer call() {
        sampling.params(); // the same checks and messages as run, before anything is sent
        GenerateRequest request = sampling.applyTo(prompt.applyTo(GenerateRequest.newBuilder()), json).build();
        ClientConfig config = security.applyTo(ClientConfig.defaults());
        Duration deadline = null;
        if (deadlineMs != null) {
            if (deadlineMs <= 0) {
                throw new IllegalArgumentException("--deadline-ms must be positive, got " + deadlineMs);
            }
            // The generation's deadline only: the first call (below) connects under the client's unary deadline,
            // so name resolution and the TLS handshake do not eat into the user's budget for the answer.
            deadline = Duration.ofMillis(deadlineMs);
            config = config.withGenerateDeadline(deadline);
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Output output = new Output(out);
        try (ExpertMeshClient client = connector.connect(targets, config)) {
            // Connects (the channel is lazy) before the generation's deadline starts. Without a tokenizer on the
            // router, token texts are empty: print ids, as run does.
            boolean routerTokenizes = client.modelInfo().getHasTokenizer();
            output.idsOnly = !json && request.hasTokenIds() && !routerTokenizes;
            Finished finished = null;
            try (GenerateStream stream = client.generateStream(request)) {
                while (stream.hasNext()) {
                    GenerateResponse response = stream.next();
                    response.getTokensList().forEach(output::token);
                    if (response.hasFinished()) {
                        finished = response.getFinished();
                    }
                }
            }
            if (finished == null) {
                throw ExpertMeshException.from(Status.INTERNAL
                        .withDescription("the Generate stream ended without a finished message").asRuntimeException());
            }
            output.finish(finished, err);
            FinishReason reason = finished.getReason();
            if (reason != FinishReason.FINISH_REASON_STOP && reason != FinishReason.FINISH_REASON_LENGTH) {
                err.println("expertmesh generate: the router ended the generation: " + wireName(reason));
                err.flush();
                return SERVER_ERROR;
            }
            return 0;
        } catch (ExpertMeshException e) {
            output.endLine();
            err.println("expertmesh generate: " + CallFailure.describe(e, String.join(",", targets), deadline));
            err.flush();
            return exitCode(e.getStatus().getCode());
        }
    }

    /**
     * 2 when the request was refused for what it asked or carried (fix it, its credentials, or retry later), 3 when
     * the router failed or could not be reached.
     */
    static int exitCode(Status.Code code) {
        return switch (code) {
            // a missing, unknown or insufficient token is the caller's to fix, like a bad argument
            case INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, UNAUTHENTICATED,
                 PERMISSION_DENIED -> REJECTED;
            default -> SERVER_ERROR;
        };
    }

    /** The finish reason as run prints it: stop, length, cancelled, error. */
    static String wireName(FinishReason reason) {
        return switch (reason) {
            case FINISH_REASON_STOP -> "stop";
            case FINISH_REASON_LENGTH -> "length";
            case FINISH_REASON_CANCELLED -> "cancelled";
            case FINISH_REASON_ERROR -> "error";
            case FINISH_REASON_UNSPECIFIED, UNRECOGNIZED -> "unknown";
        };
    }

    /** Prints tokens as they arrive and the summary at the end, as run does. */
    private final class Output {
        private final PrintWriter out;
        private final JsonLines lines;
        private boolean idsOnly;
        private boolean midLine;

        Output(PrintWriter out) {
            this.out = out;
            this.lines = new JsonLines(out);
        }

        void token(GeneratedToken t) {
            if (json) {
                lines.token(t.getIndex(), t.getTokenId(), t.getText(), t.hasLogprob() ? t.getLogprob() : null,
                        t.getTopLogprobsList().stream()
                                .map(a -> new JsonLines.Alternative(a.getTokenId(), a.getLogprob())).toList());
                return;
            }
            out.print(idsOnly ? (t.getIndex() == 0 ? "" : " ") + t.getTokenId() : t.getText());
            out.flush();
            midLine = true;
        }

        void finish(Finished f, PrintWriter err) {
            Usage u = f.getUsage();
            double decodeMs = Math.max(0, u.getTotalMs() - u.getTimeToFirstTokenMs());
            double prefillTps = u.getTimeToFirstTokenMs() == 0 ? 0
                    : u.getPromptTokens() * 1e3 / u.getTimeToFirstTokenMs();
            double decodeTps = u.getCompletionTokens() <= 1 || decodeMs == 0 ? 0
                    : (u.getCompletionTokens() - 1) * 1e3 / decodeMs;
            if (json) {
                lines.summary(new JsonLines.Summary(wireName(f.getReason()), u.getPromptTokens(),
                        u.getCompletionTokens(), u.getCachedPromptTokens(), u.getTimeToFirstTokenMs(), decodeMs,
                        prefillTps, decodeTps));
                return;
            }
            out.println();
            out.flush();
            midLine = false;
            err.printf("[%s] prompt %d tokens (%d cached), completion %d tokens, TTFT %.1f ms (queue %.1f ms), "
                            + "prefill %.1f tok/s, decode %.1f tok/s%n", wireName(f.getReason()), u.getPromptTokens(),
                    u.getCachedPromptTokens(), u.getCompletionTokens(), u.getTimeToFirstTokenMs(), u.getQueueMs(),
                    prefillTps, decodeTps);
            err.flush();
        }

        void endLine() {
            if (midLine) {
                out.println();
                out.flush();
                midLine = false;
            }
        }
    }
}
