package io.expertmesh.bench.load;

import io.grpc.Status;

/**
 * HTTP statuses as the gRPC codes they correspond to (gRPC's own HTTP mapping, widened to the statuses OpenAI
 * servers answer), so a benchmark report counts the failures of both protocols under the same names.
 */
public final class HttpStatusCodes {
    private HttpStatusCodes() {
    }

    public static Status.Code toGrpc(int status) {
        return switch (status) {
            case 400, 413, 422 -> Status.Code.INVALID_ARGUMENT;
            case 401 -> Status.Code.UNAUTHENTICATED;
            case 403 -> Status.Code.PERMISSION_DENIED;
            case 404 -> Status.Code.NOT_FOUND;
            case 408, 504 -> Status.Code.DEADLINE_EXCEEDED;
            case 409 -> Status.Code.ABORTED;
            case 429 -> Status.Code.RESOURCE_EXHAUSTED;
            case 499 -> Status.Code.CANCELLED;
            case 501 -> Status.Code.UNIMPLEMENTED;
            case 502, 503 -> Status.Code.UNAVAILABLE;
            default -> status >= 500 ? Status.Code.INTERNAL
                    : status >= 400 ? Status.Code.FAILED_PRECONDITION : Status.Code.UNKNOWN;
        };
    }
}
