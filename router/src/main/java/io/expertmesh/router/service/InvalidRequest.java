package io.expertmesh.router.service;

import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;

/**
 * Collects what is wrong with a request, field by field, and turns it into one INVALID_ARGUMENT status whose
 * message lists every problem and whose details carry a {@code google.rpc.BadRequest}.
 */
final class InvalidRequest {
    private final List<BadRequest.FieldViolation> violations = new ArrayList<>();

    InvalidRequest add(String field, String description) {
        violations.add(BadRequest.FieldViolation.newBuilder().setField(field).setDescription(description).build());
        return this;
    }

    boolean isEmpty() {
        return violations.isEmpty();
    }

    void throwIfAny() {
        if (!violations.isEmpty()) {
            throw toException();
        }
    }

    StatusRuntimeException toException() {
        StringBuilder message = new StringBuilder();
        for (BadRequest.FieldViolation v : violations) {
            if (!message.isEmpty()) {
                message.append("; ");
            }
            message.append(v.getField()).append(": ").append(v.getDescription());
        }
        com.google.rpc.Status status = com.google.rpc.Status.newBuilder()
                .setCode(Code.INVALID_ARGUMENT_VALUE)
                .setMessage(message.toString())
                .addDetails(com.google.protobuf.Any.pack(BadRequest.newBuilder().addAllFieldViolations(violations)
                        .build()))
                .build();
        return StatusProto.toStatusRuntimeException(status);
    }

    /** A single-field INVALID_ARGUMENT. */
    static StatusRuntimeException of(String field, String description) {
        return new InvalidRequest().add(field, description).toException();
    }
}
