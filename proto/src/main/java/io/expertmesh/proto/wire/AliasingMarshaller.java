package io.expertmesh.proto.wire;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.ExtensionRegistryLite;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.protobuf.ProtoUtils;
import java.io.IOException;
import java.io.InputStream;

/**
 * A protobuf marshaller for messages that are mostly one large {@code bytes} field (the hidden states of a
 * RunExperts call, the expert outputs of its answer): it reads the frame into one array of its exact size and
 * parses with aliasing, so the field is a view of that array. gRPC's own marshaller copies such a field out of its
 * read buffer (a thread-local one, weakly held, so reallocated after most collections), and above 4 MiB reads
 * through a stream decoder that copies twice; on a router and two workers serving 32 streams that was about a
 * quarter of everything they allocated. The array belongs to the parsed message alone, so nothing has to be
 * released. Writing is gRPC's.
 */
public final class AliasingMarshaller<T extends Message> implements MethodDescriptor.PrototypeMarshaller<T> {
    private final T prototype;
    private final Parser<T> parser;
    private final MethodDescriptor.Marshaller<T> writer;

    @SuppressWarnings("unchecked")
    private AliasingMarshaller(T prototype) {
        this.prototype = prototype;
        this.parser = (Parser<T>) prototype.getParserForType();
        this.writer = ProtoUtils.marshaller(prototype);
    }

    /** A marshaller of {@code prototype}'s type. */
    public static <T extends Message> AliasingMarshaller<T> of(T prototype) {
        return new AliasingMarshaller<>(prototype);
    }

    @Override
    public T getMessagePrototype() {
        return prototype;
    }

    @Override
    public Class<T> getMessageClass() {
        @SuppressWarnings("unchecked")
        Class<T> c = (Class<T>) prototype.getClass();
        return c;
    }

    @Override
    public InputStream stream(T value) {
        return writer.stream(value);
    }

    @Override
    public T parse(InputStream stream) {
        try {
            byte[] frame = stream instanceof KnownLength ? readExactly(stream, stream.available())
                    : stream.readAllBytes();
            CodedInputStream in = UnsafeByteOperations.unsafeWrap(frame).newCodedInput();
            in.enableAliasing(true);
            return parser.parseFrom(in, ExtensionRegistryLite.getEmptyRegistry());
        } catch (InvalidProtocolBufferException e) {
            throw Status.INTERNAL.withDescription("Invalid protobuf byte sequence").withCause(e).asRuntimeException();
        } catch (IOException e) {
            throw Status.INTERNAL.withDescription("could not read the message").withCause(e).asRuntimeException();
        }
    }

    private static byte[] readExactly(InputStream stream, int size) throws IOException {
        byte[] frame = new byte[size];
        int read = 0;
        while (read < size) {
            int n = stream.read(frame, read, size - read);
            if (n < 0) {
                throw new IOException("message ended after " + read + " of " + size + " bytes");
            }
            read += n;
        }
        if (stream.read() >= 0) {
            throw new IOException("message longer than the " + size + " bytes it announced");
        }
        return frame;
    }
}
