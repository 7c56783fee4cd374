package io.expertmesh.cli;

import io.expertmesh.client.ExpertMeshException;
import io.grpc.Status;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.time.Duration;

/**
 * One line for a failed call to a router, in the user's terms: an unreachable router by its address, a
 * {@code --deadline-ms} by its value, a rejection with its reasons once (the router's description often repeats
 * its {@code BadRequest} field violations word for word), and gRPC's own wording only where there is nothing better.
 */
final class CallFailure {
    private CallFailure() {
    }

    /**
     * @param target   the router's address as the user gave it; several comma-separated
     * @param deadline the {@code --deadline-ms} in force; null: none
     */
    static String describe(ExpertMeshException e, String target, Duration deadline) {
        Status.Code code = e.code();
        if (code == Status.Code.UNAVAILABLE) {
            String why = unreachable(e.getStatus().getCause());
            if (why != null) {
                return target.contains(",") ? "routers " + target + " are not reachable (" + why + ")"
                        : "router " + target + " is not reachable (" + why + ")";
            }
        }
        if (code == Status.Code.DEADLINE_EXCEEDED && deadline != null) {
            return "no complete response within " + deadline.toMillis() + " ms (--deadline-ms; router " + target
                    + ")";
        }
        StringBuilder b = new StringBuilder(code.name());
        String description = e.description();
        if (!description.isEmpty()) {
            b.append(": ").append(description);
        }
        String extra = e.fieldViolations().stream().map(Object::toString).filter(v -> !description.contains(v))
                .reduce((x, y) -> x + "; " + y).orElse("");
        if (!extra.isEmpty()) {
            b.append(" (").append(extra).append(')');
        }
        if (GenerateCommand.exitCode(code) == GenerateCommand.SERVER_ERROR) {
            b.append(" (router ").append(target).append(')');
        }
        return b.toString();
    }

    /** Why no connection could be made, from the transport's exception; null when the cause is something else. */
    private static String unreachable(Throwable cause) {
        for (Throwable t = cause; t != null; t = t.getCause()) {
            if (t instanceof ConnectException) {
                return "connection refused: nothing listens there";
            }
            if (t instanceof NoRouteToHostException) {
                return "no route to host";
            }
            if (t instanceof UnknownHostException) {
                return "unknown host";
            }
        }
        return null;
    }
}
