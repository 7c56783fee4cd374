package io.expertmesh.cli;

import io.expertmesh.cli.bench.ArrivalProcess;
import io.expertmesh.cli.bench.BenchJson;
import io.expertmesh.cli.bench.BenchRunner;
import io.expertmesh.cli.bench.BenchSummary;
import io.expertmesh.cli.bench.BenchTarget;
import io.expertmesh.cli.bench.GrpcTarget;
import io.expertmesh.cli.bench.HtmlReport;
import io.expertmesh.cli.bench.LengthDistribution;
import io.expertmesh.cli.bench.OpenAiTarget;
import io.expertmesh.cli.bench.ServedModel;
import io.expertmesh.cli.bench.Slo;
import io.expertmesh.cli.bench.TargetException;
import io.expertmesh.cli.bench.Workload;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code expertmesh bench}: a load test of running routers over their public gRPC API, or of any OpenAI-compatible
 * server over HTTP, reporting TTFT, TPOT, ITL and E2E percentiles, throughput, goodput and the prefix-cache hit
 * rate, as vLLM's {@code benchmark_serving}.
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
    private static final Logger log = LoggerFactory.getLogger(BenchCommand.class);
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
        Slo objectives = Slo.parse(slo);
        LengthDistribution in = LengthDistribution.parse(inputLen);
        LengthDistribution out = LengthDistribution.parse(outputLen);
        List<Double> rates = rates();
        if (numRequests < 1 || warmup < 0) {
            throw new IllegalArgumentException("--num-requests must be >= 1 and --warmup >= 0");
        }
        if (maxConcurrency != null && maxConcurrency < 1) {
            throw new IllegalArgumentException("--max-concurrency must be >= 1, got " + maxConcurrency);
        }
        if (!(durationSeconds > 0) || !(drainSeconds >= 0)) {
            throw new IllegalArgumentException("--duration must be > 0 and --drain-timeout >= 0");
        }
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        String target = String.join(",", targets);
        try (BenchTarget bench = openTarget()) {
            ServedModel served = bench.model();
            int vocab = vocabSize != null ? vocabSize : served.vocabSize();
            if (vocab < 1) {
                throw new IllegalArgumentException(target + " does not report its vocabulary size; give "
                        + "--vocab-size (the model's vocab_size)");
            }
            int context = maxContext != null ? maxContext : served.maxContext();
            if (context < 2) {
                throw new IllegalArgumentException(target + " does not report its context length; give "
                        + "--max-context");
            }
            Workload workload = new Workload(in, out, prefixGroups, prefixLen, vocab, context, seed);
            List<Workload.Item> items = workload.generate(warmup + numRequests);
            Map<String, String> settings = settings(bench, served, vocab, context, objectives);
            log.info("bench {}: {}", target, settings);
            List<BenchSummary> runs = new ArrayList<>();
            for (int i = 0; i < rates.size(); i++) {
                Double rate = rates.get(i);
                ArrivalProcess arrivals = rate == null ? null : new ArrivalProcess(rate, burstiness);
                BenchRunner.Plan plan = new BenchRunner.Plan(i == 0 ? items.subList(0, warmup) : List.of(),
                        items.subList(warmup, items.size()), arrivals, maxConcurrency == null ? 0 : maxConcurrency,
                        seconds(durationSeconds), seconds(drainSeconds), ignoreEos, seed + i);
                BenchRunner runner = new BenchRunner(bench);
                String label = label(rate);
                BenchRunner.Result result;
                try (Progress progress = new Progress(runner.counters(), label, err)) {
                    result = runner.run(plan);
                }
                BenchSummary summary = BenchSummary.of(label, rate == null ? Double.POSITIVE_INFINITY : rate,
                        plan.maxConcurrency(), result.durationNanos(), result.records(), objectives);
                runs.add(summary);
                stdout.print(summary.text());
                stdout.flush();
            }
            if (resultJson != null) {
                BenchJson.write(resultJson, settings, runs);
                err.println("expertmesh bench: wrote " + resultJson);
            }
            if (reportHtml != null) {
                HtmlReport.write(reportHtml, settings, runs);
                err.println("expertmesh bench: wrote " + reportHtml);
            }
            err.flush();
            if (runs.stream().allMatch(r -> r.completed() == 0)) {
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

    private String label(Double rate) {
        String c = maxConcurrency == null ? "" : "concurrency=" + maxConcurrency;
        if (rate == null) {
            return c;
        }
        String r = "rate=" + (rate.isInfinite() ? "inf" : stripZeros(rate));
        return c.isEmpty() ? r : r + "," + c;
    }

    private static String stripZeros(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }

    private Map<String, String> settings(BenchTarget bench, ServedModel served, int vocab, int context,
                                         Slo objectives) {
        Map<String, String> s = new LinkedHashMap<>();
        s.put("backend", bench.protocol());
        s.put("target", String.join(",", targets));
        s.put("model_id", served.id());
        if (bench instanceof OpenAiTarget) {
            s.put("request", "POST /v1/completions, stream, prompt as token ids, temperature 0, include_usage");
        }
        s.put("vocab_size", Integer.toString(vocab));
        s.put("context", Integer.toString(context));
        s.put("request_rate", requestRate == null ? (sweep == null ? "inf" : String.join(",", sweep))
                : stripZeros(requestRate));
        s.put("burstiness", Double.toString(burstiness));
        s.put("max_concurrency", maxConcurrency == null ? "none" : maxConcurrency.toString());
        s.put("num_requests", Integer.toString(numRequests));
        s.put("warmup", Integer.toString(warmup));
        s.put("duration_s", Double.toString(durationSeconds));
        s.put("input_len", LengthDistribution.parse(inputLen).toString());
        s.put("output_len", LengthDistribution.parse(outputLen).toString());
        s.put("prefix_groups", Integer.toString(prefixGroups));
        s.put("prefix_len", Integer.toString(prefixLen));
        s.put("ignore_eos", Boolean.toString(ignoreEos));
        s.put("seed", Long.toString(seed));
        s.put("slo", objectives.toString());
        return s;
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

    /**
     * The live progress line on stderr when the console is a terminal (redrawn with {@code \r} four times a
     * second), else a log line every 10 s. {@link System#console()} reports on stdin/stdout; a terminal there is
     * taken to mean one on stderr too.
     */
    private static final class Progress implements AutoCloseable {
        private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "bench-progress");
            t.setDaemon(true);
            return t;
        });
        private final boolean terminal;
        private final PrintWriter err;

        Progress(BenchRunner.Counters c, String label, PrintWriter err) {
            this.err = err;
            this.terminal = System.console() != null && System.console().isTerminal();
            long periodMs = terminal ? 250 : 10_000;
            timer.scheduleAtFixedRate(() -> report(c, label), periodMs, periodMs, TimeUnit.MILLISECONDS);
        }

        private void report(BenchRunner.Counters c, String label) {
            double s = c.elapsedSeconds();
            String line = String.format(Locale.ROOT, "[%s%s] sent %d/%d, done %d, failed %d, %d tokens "
                            + "(%.1f tok/s), %.1f s", c.warmup() ? "warm-up " : "", label, c.sent(), c.total(),
                    c.done(), c.failed(), c.outputTokens(), s > 0 ? c.outputTokens() / s : 0, s);
            if (terminal) {
                err.print("\r" + line + "\u001b[K");
                err.flush();
            } else {
                log.info("{}", line);
            }
        }

        @Override
        public void close() {
            timer.shutdownNow();
            if (terminal) {
                err.print("\r\u001b[K");
                err.flush();
            }
        }
    }
}
