package io.expertmesh.cli;

import io.expertmesh.bench.load.BenchJson;
import io.expertmesh.bench.load.BenchTarget;
import io.expertmesh.bench.load.GrpcTarget;
import io.expertmesh.bench.load.HtmlReport;
import io.expertmesh.bench.load.LengthDistribution;
import io.expertmesh.bench.load.LoadTest;
import io.expertmesh.bench.load.OpenAiTarget;
import io.expertmesh.bench.load.Slo;
import io.expertmesh.bench.load.TargetException;
import io.expertmesh.client.ClientConfig;
import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.client.ExpertMeshException;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code expertmesh bench}: the options of a load test of running routers over their public gRPC API, or of any
 * OpenAI-compatible server over HTTP; the test itself is bench's {@link LoadTest}.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Load-test a running router over gRPC, or any OpenAI-compatible server (--backend openai): "
                + "random token-id prompts, open-loop (Poisson/gamma) or closed-loop arrivals; prints "
                + "TTFT/TPOT/ITL/E2E percentiles, throughput and goodput.",
            "Length distributions: fixed:N, uniform:A:B, normal:MEAN:STD (at least 1; prompt + output cut to "
                    + "the model's context).",
            "--backend openai streams POST /v1/completions with the prompt as a list of token ids, "
                    + "temperature 0, ignore_eos and stream_options.include_usage; output tokens are counted from "
                    + "the server's usage, else one per streamed chunk."},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:the benchmark ran and at least one request succeeded",
            "2:bad arguments",
            "3:the router could not be reached, or no request succeeded"})
final class BenchCommand implements Callable<Integer> {
    static final int FAILED = 3;

    /** The protocol bench speaks. */
    enum Backend { grpc, openai }

    @Option(names = "--backend", paramLabel = "PROTOCOL", defaultValue = "grpc",
            description = "grpc: ExpertMesh routers' own API; openai: any OpenAI-compatible server (ExpertMesh's "
                    + "--http-port, vLLM, SGLang, llama-server) at --target http(s)://HOST:PORT "
                    + "(default: ${DEFAULT-VALUE}).")
    Backend backend;
    @Option(names = "--target", required = true, split = ",", paramLabel = "ADDRESS",
            description = "gRPC: the router's HOST:PORT. Several routers: comma-separated or --target repeated "
                    + "(calls are spread round robin, and one refused before its first token is sent to the next); "
                    + "or one dns:///NAME:PORT whose name resolves to several. openai: one base URL, "
                    + "http://HOST:PORT or https://HOST:PORT.")
    List<String> targets;
    @Option(names = "--model", paramLabel = "NAME",
            description = "openai: the model named in requests (default: the first of the server's /v1/models).")
    String model;
    @Option(names = "--vocab-size", paramLabel = "N",
            description = "openai: prompt token ids are drawn from [0, N) (default: what /v1/models reports: "
                    + "ExpertMesh's vocab_size, llama-server's meta.n_vocab; needed for servers that report none, "
                    + "such as vLLM).")
    Integer vocabSize;
    @Option(names = "--allow-remote", description = "Allow targets that are not loopback addresses.")
    boolean allowRemote;
    @picocli.CommandLine.Mixin
    ClientSecurityOptions security = new ClientSecurityOptions();

    @Option(names = "--request-rate", paramLabel = "R",
            description = "Requests per second, open loop (default: as fast as --max-concurrency allows).")
    Double requestRate;
    @Option(names = "--burstiness", paramLabel = "B", defaultValue = "1.0",
            description = "Gamma shape of the inter-arrival times: 1 = Poisson, <1 burstier, >1 more regular "
                    + "(default: ${DEFAULT-VALUE}).")
    double burstiness;
    @Option(names = "--max-concurrency", paramLabel = "C",
            description = "Most requests in flight; alone, a closed loop of C clients.")
    Integer maxConcurrency;
    @Option(names = "--sweep", split = ",", paramLabel = "R1,R2,...", hideParamSyntax = true,
            description = "Run once per request rate (requests/s; 'inf' allowed) and draw the throughput-latency "
                    + "curve.")
    List<String> sweep;

    @Option(names = "--num-requests", paramLabel = "N", defaultValue = "100",
            description = "Measured requests per run (default: ${DEFAULT-VALUE}).")
    int numRequests;
    @Option(names = "--duration", paramLabel = "SECONDS", defaultValue = "600",
            description = "Send no request after this many seconds of a run (default: ${DEFAULT-VALUE}).")
    double durationSeconds;
    @Option(names = "--drain-timeout", paramLabel = "SECONDS", defaultValue = "120",
            description = "After the last request is sent, wait this long for running ones, then cancel them "
                    + "(counted as CANCELLED) (default: ${DEFAULT-VALUE}).")
    double drainSeconds;
    @Option(names = "--warmup", paramLabel = "N", defaultValue = "0",
            description = "Requests sent first and not counted (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--input-len", paramLabel = "DIST", defaultValue = "fixed:64",
            description = "Prompt length, without the shared prefix (default: ${DEFAULT-VALUE}).")
    String inputLen;
    @Option(names = "--output-len", paramLabel = "DIST", defaultValue = "fixed:16",
            description = "Output length, sent as max_tokens (default: ${DEFAULT-VALUE}).")
    String outputLen;
    @Option(names = "--prefix-groups", paramLabel = "G", defaultValue = "0",
            description = "Shared-prefix workload: G groups, request i in group i mod G (default: none).")
    int prefixGroups;
    @Option(names = "--prefix-len", paramLabel = "L", defaultValue = "0",
            description = "Tokens of each group's shared prefix, before the request's own prompt.")
    int prefixLen;
    @Option(names = "--ignore-eos", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Keep generating past EOS so outputs have the asked length (default: on; "
                    + "--no-ignore-eos to stop at EOS).")
    boolean ignoreEos;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seed of the prompts, lengths and arrival gaps.")
    long seed;
    @Option(names = "--max-context", paramLabel = "TOKENS",
            description = "Context used to cut prompt + output (default: the router's max_context).")
    Integer maxContext;

    @Option(names = "--slo", paramLabel = "ttft:MS,tpot:MS", description = "Objectives for goodput.")
    String slo;
    @Option(names = "--result-json", paramLabel = "FILE", description = "Write the results as JSON.")
    Path resultJson;
    @Option(names = "--report-html", paramLabel = "FILE",
            description = "Write a self-contained HTML report with SVG charts.")
    Path reportHtml;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (maxConcurrency != null && maxConcurrency < 1) {
            throw new IllegalArgumentException("--max-concurrency must be >= 1, got " + maxConcurrency);
        }
        if (!(durationSeconds > 0) || !(drainSeconds >= 0)) {
            throw new IllegalArgumentException("--duration must be > 0 and --drain-timeout >= 0");
        }
        LoadTest.Settings settings = new LoadTest.Settings(rates(), burstiness,
                maxConcurrency == null ? 0 : maxConcurrency, numRequests, warmup, seconds(durationSeconds),
                seconds(drainSeconds), LengthDistribution.parse(inputLen), LengthDistribution.parse(outputLen),
                prefixGroups, prefixLen, ignoreEos, seed, maxContext, vocabSize, Slo.parse(slo));
        PrintWriter err = spec.commandLine().getErr();
        String target = String.join(",", targets);
        try (BenchTarget bench = openTarget()) {
            LoadTest.Report report = new LoadTest(bench, settings).run(target, spec.commandLine().getOut(), err);
            if (resultJson != null) {
                BenchJson.write(resultJson, report.settings(), report.runs());
                err.println("expertmesh bench: wrote " + resultJson);
            }
            if (reportHtml != null) {
                HtmlReport.write(reportHtml, report.settings(), report.runs());
                err.println("expertmesh bench: wrote " + reportHtml);
            }
            err.flush();
            if (!report.anyCompleted()) {
                err.println("expertmesh bench: no request succeeded");
                err.flush();
                return FAILED;
            }
            return 0;
        } catch (ExpertMeshException e) {
            err.println("expertmesh bench: " + e.getMessage() + " (router " + target + ")");
            err.flush();
            return FAILED;
        } catch (TargetException e) {
            err.println("expertmesh bench: " + e.getMessage());
            err.flush();
            return FAILED;
        }
    }

    /**
     * The target the options name, checked before anything is sent: gRPC routers through the client library
     * (which owns its channels), or one OpenAI-compatible server.
     */
    private BenchTarget openTarget() {
        ClientConfig config = security.applyTo(ClientConfig.defaults());
        if (backend == Backend.openai) {
            if (targets.size() != 1) {
                throw new IllegalArgumentException("--backend openai takes one --target URL, got " + targets.size());
            }
            String url = targets.getFirst();
            if (!url.contains("://")) {
                throw new IllegalArgumentException("--backend openai needs --target http://HOST:PORT or "
                        + "https://HOST:PORT, got " + url);
            }
            if (!allowRemote) {
                checkLoopback(OpenAiTarget.baseUri(url).getHost());
            }
            return OpenAiTarget.create(url, model, config.token(), config.tls());
        }
        if (model != null || vocabSize != null) {
            throw new IllegalArgumentException((model != null ? "--model" : "--vocab-size") + " is for --backend "
                    + "openai; a router reports its own model");
        }
        for (String t : targets) {
            if (t.startsWith("http://") || t.startsWith("https://")) {
                throw new IllegalArgumentException("--target " + t + " is an HTTP URL; add --backend openai to "
                        + "bench an OpenAI-compatible server");
            }
        }
        // the addresses' form first, so a malformed one is reported as such rather than as a host not found
        ExpertMeshClient.Builder builder = ExpertMeshClient.builder(targets);
        checkLoopback();
        return GrpcTarget.owning(builder.config(config).build());
    }

    /** The rates of the runs: the sweep, or the one --request-rate ({@code null}: closed loop). */
    private List<Double> rates() {
        List<Double> rates = new ArrayList<>();
        if (sweep != null && !sweep.isEmpty()) {
            if (requestRate != null) {
                throw new IllegalArgumentException("give --request-rate or --sweep, not both");
            }
            for (String s : sweep) {
                rates.add(parseRate(s));
            }
            return rates;
        }
        if (requestRate == null && maxConcurrency == null) {
            throw new IllegalArgumentException("give --request-rate, --max-concurrency, or --sweep");
        }
        rates.add(requestRate);
        return rates;
    }

    private static double parseRate(String s) {
        String t = s.strip().toLowerCase(Locale.ROOT);
        double r;
        try {
            r = t.equals("inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(t);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad rate '" + s + "' in --sweep");
        }
        if (!(r > 0)) {
            throw new IllegalArgumentException("rates in --sweep must be positive, got " + s);
        }
        return r;
    }

    private static Duration seconds(double s) {
        return Duration.ofNanos((long) Math.min(Long.MAX_VALUE / 2.0, s * 1e9));
    }

    /** Refuses a target that does not resolve to loopback addresses only, unless --allow-remote. */
    private void checkLoopback() {
        if (allowRemote) {
            return;
        }
        for (String target : targets) {
            checkLoopback(target);
        }
    }

    private static void checkLoopback(String target) {
        String host = host(target);
        try {
            for (InetAddress a : InetAddress.getAllByName(host)) {
                if (!a.isLoopbackAddress()) {
                    throw new IllegalArgumentException("target " + target + " is not a loopback address; pass "
                            + "--allow-remote to load-test another host");
                }
            }
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("cannot resolve the host of --target " + target);
        }
    }

    /** The host of {@code host:port}, {@code [v6]:port}, or a {@code scheme:///host:port} URI. */
    static String host(String target) {
        String t = target;
        int scheme = t.indexOf(":///");
        if (scheme >= 0) {
            t = t.substring(scheme + 4);
        } else if (t.contains("://")) {
            t = t.substring(t.indexOf("://") + 3);
        }
        if (t.startsWith("[")) {
            int close = t.indexOf(']');
            return close < 0 ? t : t.substring(1, close);
        }
        int colon = t.lastIndexOf(':');
        return colon < 0 ? t : t.substring(0, colon);
    }
}
