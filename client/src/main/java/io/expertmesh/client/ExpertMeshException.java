package io.expertmesh.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;

/**
 * A failed call: the gRPC {@link Status} (code and description) and, for INVALID_ARGUMENT, the fields the router
 * rejected (from the {@code google.rpc.BadRequest} detail of the rich error model, when it sent one).
 *
 * <p>It is a {@link StatusRuntimeException}, so code that catches those keeps working.
 */
public final class ExpertMeshException extends StatusRuntimeException {
    private static final long serialVersionUID = 1L;

    /** One rejected field of the request, e.g. {@code sampling.top_p: must be in (0, 1], got 1.5}. */
    public record FieldViolation(String field, String description) {
        @Override
        public String toString() {
            return field + ": " + description;
        }
    }

    private final transient List<FieldViolation> fieldViolations;

    private ExpertMeshException(Status status, Metadata trailers, List<FieldViolation> fieldViolations) {
        super(status, trailers); // the cause, if any, travels in the Status
        this.fieldViolations = List.copyOf(fieldViolations);
    }

    /** The exception for a failure seen by a call: the same Status, the trailers, and any BadRequest details. */
    public static ExpertMeshException from(Throwable t) {
        if (t instanceof ExpertMeshException e) {
            return e;
        }
        Status status = Status.fromThrowable(t);
        Metadata trailers = Status.trailersFromThrowable(t);
        List<FieldViolation> violations = new ArrayList<>();
        com.google.rpc.Status rich = StatusProto.fromThrowable(t);
        if (rich != null) {
            for (Any detail : rich.getDetailsList()) {
                if (detail.is(BadRequest.class)) {
                    try {
                        for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
                            violations.add(new FieldViolation(v.getField(), v.getDescription()));
                        }
                    } catch (InvalidProtocolBufferException ignored) {
                        // a malformed detail only costs the caller the field list; the Status still says why
                    }
                }
            }
        }
        return new ExpertMeshException(status, trailers, violations);
    }

    /** The gRPC status code. */
    public Status.Code code() {
        return getStatus().getCode();
    }

    /** The status description, or an empty string. */
    public String description() {
        String d = getStatus().getDescription();
        return d == null ? "" : d;
    }

    /** The rejected fields, empty when the router sent no BadRequest detail. */
    public List<FieldViolation> fieldViolations() {
        return fieldViolations;
    }

    /** One line for people: {@code INVALID_ARGUMENT: bad sampling (sampling.top_p: must be in (0, 1])}. */
    @Override
    public String getMessage() {
        StringBuilder b = new StringBuilder(code().name());
        if (!description().isEmpty()) {
            b.append(": ").append(description());
        }
        if (!fieldViolations.isEmpty()) {
            b.append(" (");
            for (int i = 0; i < fieldViolations.size(); i++) {
                b.append(i == 0 ? "" : "; ").append(fieldViolations.get(i));
            }
            b.append(')');
        }
        return b.toString();
    }
}
