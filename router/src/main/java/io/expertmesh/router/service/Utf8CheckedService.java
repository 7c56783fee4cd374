package io.expertmesh.router.service;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.InferenceServiceGrpc;
import io.expertmesh.proto.inference.v1.TokenizeRequest;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.stub.ServerCalls;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * Binds {@link InferenceService} so that a request that does not parse (for instance a prompt that is not valid
 * UTF-8, which protobuf rejects while parsing) is answered INVALID_ARGUMENT with the parser's reason. gRPC itself
 * turns a parse failure into UNKNOWN "Application error processing RPC", which tells the caller nothing.
 */
public final class Utf8CheckedService {
    private Utf8CheckedService() {
    }

    /** A request as parsed: the message, or why it could not be parsed. */
    record Parsed<T>(T message, String error) {
    }

    public static ServerServiceDefinition bind(InferenceService service) {
        ServerServiceDefinition plain = service.bindService();
        MethodDescriptor<Parsed<GenerateRequest>, ?> generate = lenient(InferenceServiceGrpc.getGenerateMethod(),
                GenerateRequest.parser());
        MethodDescriptor<Parsed<TokenizeRequest>, ?> tokenize = lenient(InferenceServiceGrpc.getTokenizeMethod(),
                TokenizeRequest.parser());
        ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(InferenceServiceGrpc.SERVICE_NAME)
                .setSchemaDescriptor(plain.getServiceDescriptor().getSchemaDescriptor());
        ServerServiceDefinition.Builder def = ServerServiceDefinition.builder(descriptor
                .addMethod(generate).addMethod(tokenize)
                .addMethod(InferenceServiceGrpc.getDetokenizeMethod())
                .addMethod(InferenceServiceGrpc.getGetModelInfoMethod())
                .addMethod(InferenceServiceGrpc.getGetStatusMethod()).build());
        def.addMethod(typed(generate), ServerCalls.asyncServerStreamingCall((req, observer) -> {
            if (req.error() != null) {
                observer.onError(invalid(req.error()));
            } else {
                service.generate(req.message(), cast(observer));
            }
        }));
        def.addMethod(typed(tokenize), ServerCalls.asyncUnaryCall((req, observer) -> {
            if (req.error() != null) {
                observer.onError(invalid(req.error()));
            } else {
                service.tokenize(req.message(), cast(observer));
            }
        }));
        for (ServerMethodDefinition<?, ?> m : plain.getMethods()) {
            String name = m.getMethodDescriptor().getFullMethodName();
            if (!name.equals(generate.getFullMethodName()) && !name.equals(tokenize.getFullMethodName())) {
                def.addMethod(m);
            }
        }
        return def.build();
    }

    private static io.grpc.StatusRuntimeException invalid(String error) {
        return Status.INVALID_ARGUMENT.withDescription("request does not parse: " + error).asRuntimeException();
    }

    @SuppressWarnings("unchecked")
    private static <T> io.grpc.stub.StreamObserver<T> cast(io.grpc.stub.StreamObserver<?> o) {
        return (io.grpc.stub.StreamObserver<T>) o;
    }

    @SuppressWarnings("unchecked")
    private static <Q> MethodDescriptor<Parsed<Q>, Object> typed(MethodDescriptor<Parsed<Q>, ?> m) {
        return (MethodDescriptor<Parsed<Q>, Object>) m;
    }

    private static <Q extends Message, R> MethodDescriptor<Parsed<Q>, R> lenient(MethodDescriptor<Q, R> method,
                                                                               Parser<Q> parser) {
        MethodDescriptor.Marshaller<Q> original = method.getRequestMarshaller();
        MethodDescriptor.Marshaller<Parsed<Q>> marshaller = new MethodDescriptor.Marshaller<>() {
            @Override
            public InputStream stream(Parsed<Q> value) {
                return original.stream(value.message());
            }

            @Override
            public Parsed<Q> parse(InputStream stream) {
                try {
                    return new Parsed<>(parser.parseFrom(stream), null);
                } catch (InvalidProtocolBufferException e) {
                    return new Parsed<>(null, e.getMessage());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        };
        return method.toBuilder(marshaller, method.getResponseMarshaller()).build();
    }
}
