package io.expertmesh.bench.load;

import io.grpc.Status;

/** What a {@link BenchTarget} reports of one streaming request: its token messages, then one end. */
public interface StreamListener {

    /** A message carrying {@code count} output tokens arrived. */
    void onTokens(int count);

    /**
     * The request finished.
     *
     * @param promptTokens       prompt tokens the server counted (or the sent prompt's length when it did not say)
     * @param cachedPromptTokens prompt tokens the server found in its prefix cache (0 when it did not say)
     * @param outputTokens       output tokens the server counted, -1 when it did not say; when it differs from the
     *                           tokens the messages carried, the server's count is taken (see {@link ChunkTokens})
     */
    void onFinished(int promptTokens, int cachedPromptTokens, int outputTokens);

    /**
     * The request failed. HTTP statuses are given as the gRPC code they correspond to
     * ({@link HttpStatusCodes}), so both protocols' failures are counted under the same names.
     */
    void onError(Status.Code code, String message);
}
