package io.expertmesh.router.service;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Answers a request message that does not parse (bytes that are not the method's message, a string field that is
 * not UTF-8) with INVALID_ARGUMENT and the parser's reason, on every method of a service. gRPC itself turns a
 * failure of the request marshaller into UNKNOWN "Application error processing RPC", which tells the caller
 * nothing and reads like a server bug.
 *
 * <p>How: each method is re-bound with a request marshaller that never throws (it returns the message or why it
 * could not parse it), and a handler that closes the call with INVALID_ARGUMENT on a failed parse and otherwise
 * hands the message to the service's own handler, unchanged. The service's code and stubs do not change.
 */
public final class UnparsableRequests {
    private UnparsableRequests() {
    }

    /** A request as parsed: the message, or why it could not be parsed. */
    record Parsed<T>(T message, String error) {
    }

    /** {@code service} with every method answering an unparsable request INVALID_ARGUMENT. */
    public static ServerServiceDefinition invalidArgument(ServerServiceDefinition service) {
        ServiceDescriptor original = service.getServiceDescriptor();
        List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
        for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
            methods.add(lenient(m));
        }
        ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(original.getName())
                .setSchemaDescriptor(original.getSchemaDescriptor());
        methods.forEach(m -> descriptor.addMethod(m.getMethodDescriptor()));
        ServerServiceDefinition.Builder def = ServerServiceDefinition.builder(descriptor.build());
        methods.forEach(def::addMethod);
        return def.build();
    }

    private static <Q, R> ServerMethodDefinition<Parsed<Q>, R> lenient(ServerMethodDefinition<Q, R> m) {
        MethodDescriptor<Q, R> method = m.getMethodDescriptor();
        MethodDescriptor<Parsed<Q>, R> parsed = method.toBuilder(new LenientMarshaller<>(method
                .getRequestMarshaller()), method.getResponseMarshaller()).build();
        return ServerMethodDefinition.create(parsed, new Handler<>(method, m.getServerCallHandler()));
    }

    /** The method's own marshaller, with a parse failure as a value instead of an exception. */
    private record LenientMarshaller<Q>(MethodDescriptor.Marshaller<Q> original)
            implements MethodDescriptor.Marshaller<Parsed<Q>> {
        @Override
        public InputStream stream(Parsed<Q> value) {
            return original.stream(value.message());
        }

        @Override
        public Parsed<Q> parse(InputStream stream) {
            try {
                return new Parsed<>(original.parse(stream), null);
            } catch (RuntimeException e) {
                return new Parsed<>(null, reason(e));
            }
        }

        /** The protobuf parser's own words ("had invalid UTF-8", "invalid tag"), under gRPC's wrapper. */
        private static String reason(RuntimeException e) {
            Throwable cause = e.getCause() != null && e.getCause().getMessage() != null ? e.getCause() : e;
            return cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
        }
    }

    /** Starts the service's own handler on a view of the call typed as the service expects. */
    private record Handler<Q, R>(MethodDescriptor<Q, R> method, ServerCallHandler<Q, R> next)
            implements ServerCallHandler<Parsed<Q>, R> {
        @Override
        public ServerCall.Listener<Parsed<Q>> startCall(ServerCall<Parsed<Q>, R> call, Metadata headers) {
            ServerCall<Q, R> typed = new ForwardingServerCall.SimpleForwardingServerCall<>(cast(call)) {
                @Override
                public MethodDescriptor<Q, R> getMethodDescriptor() {
                    return method;
                }
            };
            return new Listener<>(call, next.startCall(typed, headers));
        }

        /** Every ServerCall method but the descriptor is free of the request type, so forwarding is sound. */
        @SuppressWarnings("unchecked")
        private static <Q, R> ServerCall<Q, R> cast(ServerCall<?, R> call) {
            return (ServerCall<Q, R>) call;
        }
    }

    /**
     * Hands parsed messages to the service's listener; on a failed parse closes the call INVALID_ARGUMENT and
     * hands nothing more to it but how the call ended (so it can release what it holds).
     */
    private static final class Listener<Q, R> extends ServerCall.Listener<Parsed<Q>> {
        private final ServerCall<Parsed<Q>, R> call;
        private final ServerCall.Listener<Q> next;
        private boolean refused;

        Listener(ServerCall<Parsed<Q>, R> call, ServerCall.Listener<Q> next) {
            this.call = call;
            this.next = next;
        }

        @Override
        public void onMessage(Parsed<Q> message) {
            if (refused) {
                return;
            }
            if (message.error() != null) {
                refused = true;
                call.close(Status.INVALID_ARGUMENT.withDescription("request does not parse: " + message.error()),
                        new Metadata());
                return;
            }
            next.onMessage(message.message());
        }

        @Override
        public void onHalfClose() {
            if (!refused) {
                next.onHalfClose();
            }
        }

        @Override
        public void onCancel() {
            next.onCancel();
        }

        @Override
        public void onComplete() {
            next.onComplete();
        }

        @Override
        public void onReady() {
            if (!refused) {
                next.onReady();
            }
        }
    }
}
