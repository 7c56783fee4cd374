package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.OutputMode;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.expertmesh.proto.wire.AliasingMarshaller;
import io.expertmesh.proto.wire.RunExpertsWire;
import io.grpc.KnownLength;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The RunExperts marshaller that parses without copying: same messages as protobuf's, clear errors on bad bytes. */
class RunExpertsWireTest {

    private static byte[] bytes(InputStream in) throws IOException {
        return in.readAllBytes();
    }

    /** A known-length stream over {@code b}, as gRPC hands a marshaller a received frame. */
    private static class Frame extends ByteArrayInputStream implements KnownLength {
        Frame(byte[] b) {
            super(b);
        }
    }

    @Test
    void roundTrip_requestAndResponse_equalTheOriginals() throws IOException {
        byte[] hidden = new byte[3 * 1024 * 4 + 7];
        new Random(5).nextBytes(hidden);
        RunExpertsRequest req = RunExpertsRequest.newBuilder().setLayer(3).setHiddenSize(1024).setNumTokens(3)
                .setEncoding(HiddenEncoding.HIDDEN_ENCODING_F32).setOutputMode(OutputMode.OUTPUT_MODE_PER_ASSIGNMENT)
                .addExpertIds(4).addExpertIds(1).addWeights(0.25f).addWeights(0.75f).addAssignmentsPerToken(2)
                .setHiddenStates(ByteString.copyFrom(hidden)).build();
        AliasingMarshaller<RunExpertsRequest> m = AliasingMarshaller.of(RunExpertsRequest.getDefaultInstance());
        byte[] wire = bytes(m.stream(req));
        assertEquals(req, m.parse(new Frame(wire)));
        // Also from a stream that does not say its length.
        assertEquals(req, m.parse(new InputStream() {
            final ByteArrayInputStream in = new ByteArrayInputStream(wire);

            @Override
            public int read() {
                return in.read();
            }
        }));
        RunExpertsResponse resp = RunExpertsResponse.newBuilder().setEncoding(HiddenEncoding.HIDDEN_ENCODING_BF16)
                .setOutputs(ByteString.copyFrom(hidden, 0, 2048)).setQueueMicros(12).setComputeMicros(345).build();
        AliasingMarshaller<RunExpertsResponse> r = AliasingMarshaller.of(RunExpertsResponse.getDefaultInstance());
        assertEquals(resp, r.parse(new Frame(bytes(r.stream(resp)))));
        assertEquals(RunExpertsResponse.getDefaultInstance(), r.parse(new Frame(new byte[0])));
    }

    @Test
    void badBytes_internalWithAClearMessage() throws IOException {
        AliasingMarshaller<RunExpertsRequest> m = AliasingMarshaller.of(RunExpertsRequest.getDefaultInstance());
        // A length-delimited field (hidden_states) announcing more bytes than follow.
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                () -> m.parse(new Frame(new byte[] {0x2a, 0x7f, 1, 2})));
        assertEquals(Status.Code.INTERNAL, e.getStatus().getCode());
        // A frame shorter than its announced length.
        byte[] wire = bytes(m.stream(RunExpertsRequest.newBuilder().setLayer(1).setNumTokens(2).build()));
        InputStream shortFrame = new Frame(wire) {
            @Override
            public int available() {
                return wire.length + 5;
            }
        };
        StatusRuntimeException e2 = assertThrows(StatusRuntimeException.class, () -> m.parse(shortFrame));
        assertEquals(Status.Code.INTERNAL, e2.getStatus().getCode());
        assertInstanceOf(IOException.class, e2.getCause());
    }

    @Test
    void serverDefinition_keepsEveryMethod_runExpertsParsedWithAliasing() {
        ServerServiceDefinition plain = new ExpertServiceImpl().bindService();
        ServerServiceDefinition wired = RunExpertsWire.serverDefinition(new ExpertServiceImpl());
        Set<String> want = plain.getMethods().stream().map(d -> d.getMethodDescriptor().getFullMethodName())
                .collect(Collectors.toSet());
        Set<String> got = wired.getMethods().stream().map(d -> d.getMethodDescriptor().getFullMethodName())
                .collect(Collectors.toSet());
        assertEquals(want, got);
        ServerMethodDefinition<?, ?> run = wired.getMethod(ExpertServiceGrpc.getRunExpertsMethod().getFullMethodName());
        assertInstanceOf(AliasingMarshaller.class, run.getMethodDescriptor().getRequestMarshaller());
        assertInstanceOf(AliasingMarshaller.class, RunExpertsWire.CLIENT_METHOD.getResponseMarshaller());
    }
}
