package io.expertmesh.security;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Real servers on port 0 for the security tests: an echo service ({@code test.Echo/Echo}), an admin-like one
 * ({@code test.Admin/Reset}) and grpc's health service, behind whatever credentials and interceptors a test gives.
 */
final class TestServers {
    // first: the method descriptors below need it
    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
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

    static final String ECHO_SERVICE = "test.Echo";
    static final String ADMIN_SERVICE = "test.Admin";
    static final MethodDescriptor<byte[], byte[]> ECHO = method(ECHO_SERVICE + "/Echo");
    static final MethodDescriptor<byte[], byte[]> RESET = method(ADMIN_SERVICE + "/Reset");

    private TestServers() {
    }

    static Server start(ServerSecurity security, MethodScopes scopes) {
        ServerBuilder<?> b = Grpc.newServerBuilderForPort(0, security.credentials())
                .addService(unary(ECHO)).addService(unary(RESET))
                .addService(new HealthStatusManager().getHealthService());
        List<ServerInterceptor> interceptors = security.interceptors(scopes);
        interceptors.forEach(b::intercept);
        try {
            return b.build().start();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static ManagedChannel channel(Server server, ChannelCredentials credentials) {
        return Grpc.newChannelBuilderForAddress("localhost", server.getPort(), credentials).build();
    }

    /** Calls {@code method} and returns its status code (OK when it answered). */
    static Status.Code call(Channel channel, MethodDescriptor<byte[], byte[]> method, CallOptions options) {
        try {
            byte[] reply = ClientCalls.blockingUnaryCall(channel, method,
                    options.withDeadlineAfter(10, TimeUnit.SECONDS), new byte[] {42});
            if (reply.length != 1 || reply[0] != 42) {
                throw new AssertionError("the echo came back wrong");
            }
            return Status.Code.OK;
        } catch (StatusRuntimeException e) {
            lastError = e;
            return e.getStatus().getCode();
        }
    }

    /** The last failed call of this thread's tests (for messages). */
    static volatile StatusRuntimeException lastError;

    static Status.Code health(Channel channel) {
        try {
            HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance());
            return Status.Code.OK;
        } catch (StatusRuntimeException e) {
            lastError = e;
            return e.getStatus().getCode();
        }
    }

    static void stop(Server server, ManagedChannel... channels) throws InterruptedException {
        for (ManagedChannel c : channels) {
            c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    private static ServerServiceDefinition unary(MethodDescriptor<byte[], byte[]> method) {
        return ServerServiceDefinition.builder(method.getServiceName())
                .addMethod(method, ServerCalls.asyncUnaryCall((req, out) -> {
                    out.onNext(req);
                    out.onCompleted();
                })).build();
    }

    private static MethodDescriptor<byte[], byte[]> method(String fullName) {
        return MethodDescriptor.<byte[], byte[]>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(fullName).setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
    }
}
