package io.expertmesh.bench.load;

import io.expertmesh.client.ExpertMeshClient;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A load test of running routers over their public gRPC API, or of any OpenAI-compatible server (the
 * {@link BenchTarget}), as vLLM's {@code benchmark_serving}: one run per
 * request rate, each a {@link BenchRunner} over the same generated {@link Workload}, summarized as TTFT, TPOT,
 * ITL and E2E percentiles, throughput, goodput and the prefix-cache hit rate.
 */
public final class LoadTest {
    private static final Logger log = LoggerFactory.getLogger(LoadTest.class);

    /**
     * What to send.
     *
     * @param rates          requests per second of each run; {@code null}: as fast as {@code maxConcurrency} allows
     * @param burstiness     gamma shape of the inter-arrival times (1 = Poisson)
     * @param maxConcurrency most requests in flight, 0 for no limit
     * @param numRequests    measured requests per run
     * @param warmup         requests sent first, before the first run, and not counted
     * @param duration       no request is sent after this much of a run
     * @param drainTimeout   how long running requests may finish after the last is sent
     * @param maxContext     context used to cut prompt + output; {@code null}: the server's
     * @param vocabSize      prompt token ids are drawn from {@code [0, vocabSize)}; {@code null}: the server's
     */
    public record Settings(List<Double> rates, double burstiness, int maxConcurrency, int numRequests, int warmup,
                           Duration duration, Duration drainTimeout, LengthDistribution inputLen,
                           LengthDistribution outputLen, int prefixGroups, int prefixLen, boolean ignoreEos,
                           long seed, Integer maxContext, Integer vocabSize, Slo slo) {
        public Settings {
            rates = java.util.Collections.unmodifiableList(new ArrayList<>(rates)); // a null rate is allowed
            if (rates.isEmpty()) {
                throw new IllegalArgumentException("no request rate");
            }
            if (numRequests < 1 || warmup < 0) {
                throw new IllegalArgumentException("--num-requests must be >= 1 and --warmup >= 0");
            }
            if (maxConcurrency < 0) {
                throw new IllegalArgumentException("maxConcurrency must be >= 0 (0: no limit), got " + maxConcurrency);
            }
        }
    }

    /** The settings as written into the reports, and one summary per run. */
    public record Report(Map<String, String> settings, List<BenchSummary> runs) {
        /** Whether any request of any run completed. */
        public boolean anyCompleted() {
            return runs.stream().anyMatch(r -> r.completed() > 0);
        }
    }

    private final BenchTarget target;
    private final Settings settings;

    /** A load test of routers over gRPC through {@code client} (which stays the caller's). */
    public LoadTest(ExpertMeshClient client, Settings settings) {
        this(new GrpcTarget(client), settings);
    }

    /** A load test of {@code target} (which stays the caller's). */
    public LoadTest(BenchTarget target, Settings settings) {
        this.target = target;
        this.settings = settings;
    }

    /**
     * Runs each rate in turn, printing each run's summary to {@code out} and progress to {@code err}.
     *
     * @param address the server's address (the routers', the URL), for the report
     * @throws TargetException         when the server cannot be reached or does not describe its model
     * @throws IllegalArgumentException when the server reports no vocabulary or context and the settings give none
     */
    public Report run(String address, PrintWriter out, PrintWriter err) throws InterruptedException {
        Settings s = settings;
        ServedModel served = target.model();
        int vocab = s.vocabSize() != null ? s.vocabSize() : served.vocabSize();
        if (vocab < 1) {
            throw new IllegalArgumentException(address + " does not report its vocabulary size; give --vocab-size "
                    + "(the model's vocab_size)");
        }
        int context = s.maxContext() != null ? s.maxContext() : served.maxContext();
        if (context < 2) {
            throw new IllegalArgumentException(address + " does not report its context length; give --max-context");
        }
        Workload workload = new Workload(s.inputLen(), s.outputLen(), s.prefixGroups(), s.prefixLen(), vocab,
                context, s.seed());
        List<Workload.Item> items = workload.generate(s.warmup() + s.numRequests());
        Map<String, String> described = describe(address, served, vocab, context);
        log.info("bench {}: {}", address, described);
        List<BenchSummary> runs = new ArrayList<>();
        for (int i = 0; i < s.rates().size(); i++) {
            Double rate = s.rates().get(i);
            ArrivalProcess arrivals = rate == null ? null : new ArrivalProcess(rate, s.burstiness());
            BenchRunner.Plan plan = new BenchRunner.Plan(i == 0 ? items.subList(0, s.warmup()) : List.of(),
                    items.subList(s.warmup(), items.size()), arrivals, s.maxConcurrency(), s.duration(),
                    s.drainTimeout(), s.ignoreEos(), s.seed() + i);
            BenchRunner runner = new BenchRunner(target);
            String label = label(rate);
            BenchRunner.Result result;
            try (Progress progress = new Progress(runner.counters(), label, err)) {
                result = runner.run(plan);
            }
            BenchSummary summary = BenchSummary.of(label, rate == null ? Double.POSITIVE_INFINITY : rate,
                    plan.maxConcurrency(), result.durationNanos(), result.records(), s.slo());
            runs.add(summary);
            out.print(summary.text());
            out.flush();
        }
        return new Report(described, runs);
    }

    private String label(Double rate) {
        String c = settings.maxConcurrency() == 0 ? "" : "concurrency=" + settings.maxConcurrency();
        if (rate == null) {
            return c;
        }
        String r = "rate=" + rateText(rate);
        return c.isEmpty() ? r : r + "," + c;
    }

    private static String rateText(Double rate) {
        if (rate == null || rate.isInfinite()) {
            return "inf";
        }
        return rate == Math.rint(rate) ? Long.toString(rate.longValue()) : rate.toString();
    }

    private Map<String, String> describe(String address, ServedModel served, int vocab, int context) {
        Settings s = settings;
        Map<String, String> m = new LinkedHashMap<>();
        m.put("backend", target.protocol());
        m.put("target", address);
        m.put("model_id", served.id());
        if (target instanceof OpenAiTarget) {
            m.put("request", "POST /v1/completions, stream, prompt as token ids, temperature 0, include_usage");
        }
        m.put("vocab_size", Integer.toString(vocab));
        m.put("context", Integer.toString(context));
        m.put("request_rate", s.rates().stream().map(LoadTest::rateText).collect(Collectors.joining(",")));
        m.put("burstiness", Double.toString(s.burstiness()));
        m.put("max_concurrency", s.maxConcurrency() == 0 ? "none" : Integer.toString(s.maxConcurrency()));
        m.put("num_requests", Integer.toString(s.numRequests()));
        m.put("warmup", Integer.toString(s.warmup()));
        m.put("duration_s", Double.toString(s.duration().toNanos() / 1e9));
        m.put("input_len", s.inputLen().toString());
        m.put("output_len", s.outputLen().toString());
        m.put("prefix_groups", Integer.toString(s.prefixGroups()));
        m.put("prefix_len", Integer.toString(s.prefixLen()));
        m.put("ignore_eos", Boolean.toString(s.ignoreEos()));
        m.put("seed", Long.toString(s.seed()));
        m.put("slo", s.slo().toString());
        return m;
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
