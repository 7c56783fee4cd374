package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.cluster.v1.ClusterServiceGrpc;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.CallOptions;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.ClientCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A request that does not parse is refused as INVALID_ARGUMENT by every method, not UNKNOWN. */
class UnparsableRequestTest {
    static TestRouter router;

    /** Sends and receives raw protobuf bytes, so the client can put anything on the wire. */
    static final MethodDescriptor.Marshaller<byte[]> RAW = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    @BeforeAll
    static void start() throws Exception {
        router = TestRouter.started(TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 4, 4, true));
    }

    @AfterAll
    static void stop() {
        router.close();
    }

    /** Calls {@code method} with {@code request} as its raw bytes; the status it ends with. */
    static Status call(MethodDescriptor<?, ?> method, byte[] request) {
        MethodDescriptor<byte[], byte[]> raw = method.toBuilder(RAW, RAW).build();
        CallOptions options = CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS);
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> {
            if (raw.getType() == MethodDescriptor.MethodType.UNARY) {
                ClientCalls.blockingUnaryCall(router.channel, raw, options, request);
            } else {
                ClientCalls.blockingServerStreamingCall(router.channel, raw, options, request)
                        .forEachRemaining(x -> { });
            }
        }, method.getFullMethodName());
        return e.getStatus();
    }

    @Test
    void generate_textNotUtf8_invalidArgumentSayingUtf8() {
        // Field 2 (text), length-delimited, 3 bytes: 0xC3 0x28 0xFF is not UTF-8.
        Status s = call(InferenceServiceGrpc.getGenerateMethod(), new byte[] {0x12, 0x03, (byte) 0xC3, 0x28,
                (byte) 0xFF});
        assertEquals(Status.Code.INVALID_ARGUMENT, s.getCode(), s.toString());
        assertTrue(s.getDescription().contains("UTF-8"), s.getDescription());
    }

    @Test
    void everyMethod_bytesThatAreNoMessage_invalidArgument() {
        // Tag 0 is invalid in every protobuf message.
        byte[] garbage = {0x00, 0x01};
        List<MethodDescriptor<?, ?>> methods = new ArrayList<>();
        for (ServiceDescriptor service : List.of(InferenceServiceGrpc.getServiceDescriptor(),
                ClusterServiceGrpc.getServiceDescriptor(), HealthGrpc.getServiceDescriptor())) {
            methods.addAll(service.getMethods());
        }
        assertFalse(methods.isEmpty());
        for (MethodDescriptor<?, ?> m : methods) {
            Status s = call(m, garbage);
            assertEquals(Status.Code.INVALID_ARGUMENT, s.getCode(), m.getFullMethodName() + ": " + s);
            assertTrue(s.getDescription().startsWith("request does not parse: "), s.getDescription());
        }
        // and the methods still answer a good request
        assertEquals(1024, InferenceServiceGrpc.newBlockingStub(router.channel).getModelInfo(
                io.expertmesh.proto.inference.v1.GetModelInfoRequest.getDefaultInstance()).getShape().getVocabSize());
    }
}
