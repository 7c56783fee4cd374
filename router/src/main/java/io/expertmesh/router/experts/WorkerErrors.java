package io.expertmesh.router.experts;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.expertmesh.proto.expert.v1.ErrorReason;
import io.grpc.protobuf.StatusProto;

/** Reads the typed reasons an expert worker attaches to its errors (google.rpc.ErrorInfo), never message text. */
final class WorkerErrors {
    /** ErrorInfo.domain of the expert service's errors (expert.proto). */
    static final String DOMAIN = "expertmesh.expert.v1";

    private WorkerErrors() {
    }

    /** True when {@code t} is a worker's "experts not held" refusal. */
    static boolean expertsNotHeld(Throwable t) {
        return hasReason(t, ErrorReason.ERROR_REASON_EXPERTS_NOT_HELD);
    }

    static boolean hasReason(Throwable t, ErrorReason reason) {
        com.google.rpc.Status status = StatusProto.fromThrowable(t);
        if (status == null) {
            return false;
        }
        for (Any detail : status.getDetailsList()) {
            if (detail.is(ErrorInfo.class)) {
                try {
                    ErrorInfo info = detail.unpack(ErrorInfo.class);
                    if (DOMAIN.equals(info.getDomain()) && reason.name().equals(info.getReason())) {
                        return true;
                    }
                } catch (InvalidProtocolBufferException e) {
                    return false; // a malformed detail is no reason
                }
            }
        }
        return false;
    }
}
