package io.expertmesh.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.router.engine.EngineConfig;
import io.grpc.CallOptions;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.junit.jupiter.api.Test;

/** A prompt that is not valid UTF-8 is refused as INVALID_ARGUMENT, not an internal error. */
class InvalidUtf8Test {

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

    @Test
    void generate_textNotUtf8_invalidArgument() throws Exception {
        try (TestRouter r = TestRouter.started(TestModels.FIXTURE, new EngineConfig(4, 4L << 20, 64, 4, 4, true))) {
            MethodDescriptor<byte[], byte[]> raw = InferenceServiceGrpc.getGenerateMethod().toBuilder(RAW, RAW).build();
            // Field 2 (text), length-delimited, 3 bytes: 0xC3 0x28 0xFF is not UTF-8.
            byte[] request = {0x12, 0x03, (byte) 0xC3, 0x28, (byte) 0xFF};
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> ClientCalls.blockingServerStreamingCall(r.channel, raw, CallOptions.DEFAULT, request)
                            .forEachRemaining(x -> { }));
            assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().toString());
            assertTrue(e.getStatus().getDescription().contains("UTF-8"), e.getStatus().getDescription());
        }
    }
}
