package io.expertmesh.telemetry;

import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannelBuilder;
import io.grpc.ServerBuilder;
import io.grpc.opentelemetry.GrpcOpenTelemetry;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.api.baggage.propagation.W3CBaggagePropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.context.propagation.TextMapPropagator;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.spi.ConfigProperties;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.SdkMeterProviderBuilder;
import io.opentelemetry.sdk.metrics.export.MetricReader;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.SdkTracerProviderBuilder;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import io.opentelemetry.sdk.trace.samplers.Sampler;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One process's OpenTelemetry: the SDK (traces and metrics), an optional Prometheus scrape endpoint, gRPC's
 * standard metrics (grpc-opentelemetry: {@code grpc.server.call.duration}, {@code grpc.client.attempt.duration},
 * ...) and W3C trace context carried over gRPC metadata. Services take a {@code Telemetry} and ask it for
 * tracers and meters; {@link #noop()} records nothing and costs nearly nothing. Histograms the process reads
 * back itself (status, hedging) come from the same instruments through {@link #histograms()}.
 *
 * <p>{@link #fromEnvironment} reads the standard {@code OTEL_*} environment variables and {@code otel.*}
 * system properties (exporters OTLP or logging, sampler, resource, ...). Unlike the SDK's own defaults, traces,
 * metrics and logs exporters default to {@code none}, so nothing leaves the process unless configured; and
 * while the traces exporter is {@code none} nothing is sampled, so no span is even recorded.
 */
public final class Telemetry implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Telemetry.class);
    /** The instrumentation scope of ExpertMesh's own spans and instruments. */
    public static final String SCOPE = "io.expertmesh";

    private final OpenTelemetry otel;
    private final OpenTelemetrySdk sdk;
    private final PrometheusEndpoint endpoint;
    private final GrpcOpenTelemetry grpc;
    private final TextMapPropagator propagator;
    private final TracingServerInterceptor serverInterceptor;
    /** Read back in process; on the SDK's meter provider, or on one of its own when there is no SDK. */
    private final LocalHistograms histograms;
    private final boolean ownHistograms;

    private Telemetry(OpenTelemetry otel, OpenTelemetrySdk sdk, PrometheusEndpoint endpoint,
                      LocalHistograms histograms) {
        this.otel = otel;
        this.sdk = sdk;
        this.endpoint = endpoint;
        if (histograms.registered()) {
            histograms.attach(otel.getMeter(SCOPE));
            this.histograms = histograms;
            this.ownHistograms = false;
        } else {
            // No SDK, or a disabled one that took no reader: the measurements still need reading back.
            this.histograms = LocalHistograms.standalone(histograms);
            this.ownHistograms = true;
        }
        if (sdk == null) {
            this.grpc = null;
            this.propagator = null;
            this.serverInterceptor = null;
        } else {
            this.grpc = GrpcOpenTelemetry.newBuilder().sdk(otel).build();
            this.propagator = otel.getPropagators().getTextMapPropagator();
            this.serverInterceptor = new TracingServerInterceptor(otel.getTracer(SCOPE), propagator);
        }
    }

    /**
     * Records nothing, exports nothing, adds nothing to gRPC servers and channels; only what is built on
     * {@link #histograms()}' meter is recorded, to be read back in process.
     */
    public static Telemetry noop() {
        return new Telemetry(OpenTelemetry.noop(), null, null, new LocalHistograms());
    }

    /** The SDK configured from {@code OTEL_*} / {@code otel.*} settings, with the defaults described above. */
    public static Telemetry fromEnvironment(TelemetryConfig config) {
        PrometheusEndpoint endpoint = config.endpointEnabled() ? new PrometheusEndpoint() : null;
        LocalHistograms histograms = new LocalHistograms();
        AtomicReference<ConfigProperties> effective = new AtomicReference<>();
        AutoConfiguredOpenTelemetrySdk auto = AutoConfiguredOpenTelemetrySdk.builder()
                // Lowest precedence: system properties and environment variables override these.
                .addPropertiesSupplier(() -> Map.of(
                        "otel.service.name", config.serviceName(),
                        "otel.traces.exporter", "none",
                        "otel.metrics.exporter", "none",
                        "otel.logs.exporter", "none"))
                .addPropertiesCustomizer(props -> {
                    effective.set(props);
                    return Map.of();
                })
                .addSamplerCustomizer((sampler, props) ->
                        props.getList("otel.traces.exporter", List.of()).equals(List.of("none"))
                                ? Sampler.alwaysOff() : sampler)
                .addMeterProviderCustomizer((builder, props) -> {
                    builder.registerMetricReader(histograms.reader());
                    return endpoint == null ? builder : builder.registerMetricReader(endpoint.reader());
                })
                .disableShutdownHook()
                .build();
        OpenTelemetrySdk sdk = auto.getOpenTelemetrySdk();
        Telemetry t = new Telemetry(sdk, sdk, endpoint, histograms);
        t.startEndpoint(config);
        ConfigProperties p = effective.get();
        if (p == null || p.getBoolean("otel.sdk.disabled", false)) {
            LOG.info("Telemetry: OpenTelemetry SDK disabled (otel.sdk.disabled); Prometheus {}",
                    endpoint == null ? "off" : config.metricsHost() + ":" + endpoint.port() + "/metrics");
            return t;
        }
        LOG.info("Telemetry: service {}, traces exporter {}, metrics exporter {}, sampler {}, Prometheus {}",
                p.getString("otel.service.name"), p.getString("otel.traces.exporter"),
                p.getString("otel.metrics.exporter"), p.getString("otel.traces.sampler", "parentbased_always_on"),
                endpoint == null ? "off" : config.metricsHost() + ":" + endpoint.port() + "/metrics");
        return t;
    }

    /**
     * An SDK built here rather than from the environment (tests, embedding): every span sampled and handed to
     * {@code spans} (null: no tracing), metrics to {@code readers}, W3C trace context and baggage propagation.
     */
    public static Telemetry create(TelemetryConfig config, SpanExporter spans, MetricReader... readers) {
        PrometheusEndpoint endpoint = config.endpointEnabled() ? new PrometheusEndpoint() : null;
        Resource resource = Resource.getDefault().merge(Resource.create(Attributes.of(
                io.opentelemetry.api.common.AttributeKey.stringKey("service.name"), config.serviceName())));
        SdkTracerProviderBuilder tracing = SdkTracerProvider.builder().setResource(resource);
        if (spans != null) {
            tracing.addSpanProcessor(SimpleSpanProcessor.create(spans)).setSampler(Sampler.alwaysOn());
        } else {
            tracing.setSampler(Sampler.alwaysOff());
        }
        LocalHistograms histograms = new LocalHistograms();
        SdkMeterProviderBuilder metering = SdkMeterProvider.builder().setResource(resource)
                .registerMetricReader(histograms.reader());
        for (MetricReader r : readers) {
            metering.registerMetricReader(r);
        }
        if (endpoint != null) {
            metering.registerMetricReader(endpoint.reader());
        }
        OpenTelemetrySdk sdk = OpenTelemetrySdk.builder().setTracerProvider(tracing.build())
                .setMeterProvider(metering.build())
                .setPropagators(ContextPropagators.create(TextMapPropagator.composite(
                        W3CTraceContextPropagator.getInstance(), W3CBaggagePropagator.getInstance())))
                .build();
        Telemetry t = new Telemetry(sdk, sdk, endpoint, histograms);
        t.startEndpoint(config);
        return t;
    }

    private void startEndpoint(TelemetryConfig config) {
        if (endpoint != null) {
            try {
                endpoint.start(config.metricsHost(), config.metricsPort());
            } catch (RuntimeException e) {
                sdk.close();
                throw e;
            }
        }
    }

    /** False for {@link #noop()}: callers may skip work that only feeds telemetry. */
    public boolean enabled() {
        return sdk != null;
    }

    public OpenTelemetry openTelemetry() {
        return otel;
    }

    public Tracer tracer() {
        return otel.getTracer(SCOPE);
    }

    public Meter meter() {
        return otel.getMeter(SCOPE);
    }

    /**
     * The histograms of {@link #meter()}'s provider read back in process. Without an SDK ({@link #noop()}, or
     * {@code otel.sdk.disabled}) they have a meter provider of their own that exports nothing: instruments that
     * must be read back are built on {@link LocalHistograms#meter()}, which is {@link #meter()} whenever there
     * is an SDK.
     */
    public LocalHistograms histograms() {
        return histograms;
    }

    /** The Prometheus endpoint's bound port, if there is one. */
    public OptionalInt metricsPort() {
        return endpoint == null ? OptionalInt.empty() : OptionalInt.of(endpoint.port());
    }

    /**
     * Adds gRPC's standard server metrics and a server span per call (parent: the trace context in the
     * caller's metadata) to a server about to be built.
     */
    public void configureServer(ServerBuilder<?> builder) {
        if (sdk != null) {
            grpc.configureServerBuilder(builder);
            builder.intercept(serverInterceptor);
        }
    }

    /**
     * Adds gRPC's standard client metrics and tracing to a channel about to be built: a CLIENT span per call made
     * under a sampled span, and the trace context in every call's metadata.
     */
    public void configureChannel(ManagedChannelBuilder<?> builder) {
        configureChannel(builder, ClientSpanCustomizer.NONE);
    }

    /** As {@link #configureChannel(ManagedChannelBuilder)}, with {@code customizer} naming the CLIENT spans. */
    public void configureChannel(ManagedChannelBuilder<?> builder, ClientSpanCustomizer customizer) {
        if (sdk != null) {
            grpc.configureChannelBuilder(builder);
            builder.intercept(clientInterceptor(customizer));
        }
    }

    /** Only the tracing interceptor, for channels built elsewhere; a pass-through for {@link #noop()}. */
    public ClientInterceptor clientInterceptor(ClientSpanCustomizer customizer) {
        if (sdk == null) {
            return new ClientInterceptor() {
                @Override
                public <Q, R> io.grpc.ClientCall<Q, R> interceptCall(io.grpc.MethodDescriptor<Q, R> method,
                        io.grpc.CallOptions options, io.grpc.Channel next) {
                    return next.newCall(method, options);
                }
            };
        }
        return new TracingClientInterceptor(tracer(), propagator, customizer);
    }

    /** Stops the endpoint, then flushes and shuts the SDK down (exporters get a few seconds). */
    @Override
    public void close() {
        if (endpoint != null) {
            endpoint.close();
        }
        if (sdk != null) {
            sdk.shutdown().join(5, TimeUnit.SECONDS);
        }
        if (ownHistograms) {
            histograms.close();
        }
    }
}
