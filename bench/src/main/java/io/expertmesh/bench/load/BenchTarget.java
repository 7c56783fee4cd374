package io.expertmesh.bench.load;

/**
 * Where a benchmark's requests go: a router's gRPC API ({@link GrpcTarget}) or any OpenAI-compatible HTTP server
 * ({@link OpenAiTarget}). Both report a request through a {@link StreamListener}, so the metrics and the reports
 * are the same whichever protocol carried it.
 */
public interface BenchTarget extends AutoCloseable {

    /** A started request. */
    interface InFlight {
        /** Stops the request; the listener then hears an error (CANCELLED) unless it already ended. */
        void cancel(String reason);
    }

    /**
     * The served model, asked of the server once before the first request.
     *
     * @throws TargetException when the server cannot be reached or refuses the question
     */
    ServedModel model();

    /**
     * Starts one streaming request. The listener hears its token messages, then exactly one end (finished or an
     * error), never from two threads at once.
     */
    InFlight start(Workload.Item item, String requestId, boolean ignoreEos, StreamListener listener);

    /** The protocol, for the report ({@code grpc}, {@code openai}). */
    String protocol();

    @Override
    void close();
}
