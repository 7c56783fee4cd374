package io.expertmesh.telemetry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.context.Scope;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A client span's context reaches the server's span through gRPC metadata; gRPC's own metrics are recorded. */
class TracePropagationTest {
    private static final MethodDescriptor.Marshaller<String> UTF8 = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(String value) {
            return new ByteArrayInputStream(value.getBytes(StandardCharsets.UTF_8));
        }

        @Override
        public String parse(InputStream stream) {
            try {
                return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    };
    private static final MethodDescriptor<String, String> SAY = MethodDescriptor.<String, String>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("test.Echo/Say")
            .setRequestMarshaller(UTF8).setResponseMarshaller(UTF8).build();

    private final InMemorySpanExporter clientSpans = InMemorySpanExporter.create();
    private final InMemorySpanExporter serverSpans = InMemorySpanExporter.create();
    private final InMemoryMetricReader serverMetrics = InMemoryMetricReader.create();
    private final AtomicReference<SpanContext> seenByHandler = new AtomicReference<>();
    private Telemetry client;
    private Telemetry server;
    private Server grpcServer;
    private ManagedChannel channel;

    @BeforeEach
    void start() throws IOException {
        client = Telemetry.create(TelemetryConfig.withoutEndpoint("client"), clientSpans);
        server = Telemetry.create(TelemetryConfig.withoutEndpoint("server"), serverSpans, serverMetrics);
        String name = InProcessServerBuilder.generateName();
        InProcessServerBuilder sb = InProcessServerBuilder.forName(name);
        server.configureServer(sb);
        grpcServer = sb.addService(echo()).addService(new HealthStatusManager().getHealthService()).build().start();
        InProcessChannelBuilder cb = InProcessChannelBuilder.forName(name);
        client.configureChannel(cb, (span, request) -> span.updateName("say " + request));
        channel = cb.build();
    }

    private ServerServiceDefinition echo() {
        return ServerServiceDefinition.builder("test.Echo")
                .addMethod(SAY, ServerCalls.asyncUnaryCall((req, out) -> {
                    seenByHandler.set(Span.current().getSpanContext());
                    out.onNext("echo " + req);
                    out.onCompleted();
                })).build();
    }

    @AfterEach
    void stop() {
        channel.shutdownNow();
        grpcServer.shutdownNow();
        client.close();
        server.close();
    }

    @Test
    void call_underSampledSpan_clientSpanThenServerSpan() {
        Span dispatch = client.tracer().spanBuilder("dispatch").startSpan();
        try (Scope ignored = dispatch.makeCurrent()) {
            assertEquals("echo hi", ClientCalls.blockingUnaryCall(channel, SAY, CallOptions.DEFAULT, "hi"));
        } finally {
            dispatch.end();
        }
        SpanData c = clientSpans.getFinishedSpanItems().stream().filter(x -> x.getKind() == SpanKind.CLIENT)
                .findFirst().orElseThrow();
        assertEquals("say hi", c.getName()); // named by the customizer from the request
        assertEquals(dispatch.getSpanContext().getSpanId(), c.getParentSpanId());
        List<SpanData> spans = serverSpans.getFinishedSpanItems();
        assertEquals(1, spans.size(), spans.toString());
        SpanData s = spans.getFirst();
        assertEquals("test.Echo/Say", s.getName());
        assertEquals(SpanKind.SERVER, s.getKind());
        assertEquals(dispatch.getSpanContext().getTraceId(), s.getTraceId());
        assertEquals(c.getSpanId(), s.getParentSpanId());
        assertTrue(s.getParentSpanContext().isRemote());
        // The handler ran with the server span current (services add attributes and children to it).
        assertEquals(s.getSpanContext(), seenByHandler.get());
        assertEquals(0L, s.getAttributes().get(io.opentelemetry.api.common.AttributeKey.longKey(
                "rpc.grpc.status_code")));
    }

    @Test
    void call_withoutClientSpan_noClientSpanAndServerSpanStartsATrace() {
        ClientCalls.blockingUnaryCall(channel, SAY, CallOptions.DEFAULT, "hi");
        SpanData s = serverSpans.getFinishedSpanItems().getFirst();
        assertFalse(s.getParentSpanContext().isValid());
        assertTrue(clientSpans.getFinishedSpanItems().isEmpty());
    }

    @Test
    void call_overRealSocket_contextReachesServer() throws Exception {
        io.grpc.ServerBuilder<?> sb = io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder.forPort(0);
        server.configureServer(sb);
        Server socketServer = sb.addService(echo()).build().start();
        io.grpc.ManagedChannelBuilder<?> cb = io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
                .forAddress("127.0.0.1", socketServer.getPort()).usePlaintext();
        client.configureChannel(cb);
        ManagedChannel socketChannel = cb.build();
        try {
            Span dispatch = client.tracer().spanBuilder("dispatch").startSpan();
            try (Scope ignored = dispatch.makeCurrent()) {
                ClientCalls.blockingUnaryCall(socketChannel, SAY, CallOptions.DEFAULT, "hi");
            } finally {
                dispatch.end();
            }
            SpanData c = clientSpans.getFinishedSpanItems().stream().filter(x -> x.getKind() == SpanKind.CLIENT)
                    .findFirst().orElseThrow();
            assertEquals("127.0.0.1:" + socketServer.getPort(), c.getAttributes().get(
                    io.opentelemetry.api.common.AttributeKey.stringKey("server.address")));
            // The server span ends as the call closes, which the client may see first: wait for it briefly.
            for (int i = 0; i < 200 && serverSpans.getFinishedSpanItems().isEmpty(); i++) {
                Thread.sleep(5);
            }
            SpanData s = serverSpans.getFinishedSpanItems().getFirst();
            assertEquals(dispatch.getSpanContext().getTraceId(), s.getTraceId());
            assertEquals(c.getSpanId(), s.getParentSpanId());
        } finally {
            socketChannel.shutdownNow();
            socketServer.shutdownNow();
        }
    }

    @Test
    void healthCheck_getsNoSpan_butGrpcMetricsAreRecorded() {
        HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance());
        ClientCalls.blockingUnaryCall(channel, SAY, CallOptions.DEFAULT, "hi");
        assertEquals(1, serverSpans.getFinishedSpanItems().size());
        List<String> names = serverMetrics.collectAllMetrics().stream().map(MetricData::getName).toList();
        assertTrue(names.contains("grpc.server.call.duration"), names.toString());
    }
}
