package io.expertmesh.bench.load;

import io.grpc.Status;
import java.util.Arrays;
import java.util.Objects;

/**
 * What the client saw of one request: when it was sent, when each response message with tokens arrived and how
 * many tokens it carried, when the stream ended, and the router's usage counts (or the error code).
 *
 * <p>Definitions (all measured on the client, from the moment the call is started):
 * <ul>
 *   <li>TTFT: until the first message carrying a token.</li>
 *   <li>ITL, per token: for the first token of each later message, the gap since the previous message; for the
 *       other tokens of a message that carries {@code k > 1} tokens, 0 (they arrived together). So there are
 *       {@code n - 1} ITLs for {@code n} tokens and they sum to the time from the first to the last token,
 *       and a router that batches tokens into messages shows as a few long gaps and many zeros, not as a falsely
 *       smooth average.</li>
 *   <li>E2E: until the stream ended (the {@code finished} message).</li>
 *   <li>TPOT: {@code (E2E - TTFT) / (n - 1)}; undefined (NaN) for fewer than 2 tokens.</li>
 * </ul>
 *
 * @param startNanos         {@link System#nanoTime()} when the call was started
 * @param chunkNanos         arrival time of each message that carried tokens
 * @param chunkTokens        tokens in each such message
 * @param endNanos           when the stream ended (successfully or not)
 * @param promptTokens       prompt tokens the router counted (the sent prompt length on error)
 * @param cachedPromptTokens prompt tokens the router found in its prefix cache
 * @param error              the gRPC status code of a failed call, or {@code null} for success
 */
public record RequestRecord(long startNanos, long[] chunkNanos, int[] chunkTokens, long endNanos, int promptTokens,
                            int cachedPromptTokens, Status.Code error) {

    public RequestRecord {
        Objects.requireNonNull(chunkNanos, "chunkNanos");
        Objects.requireNonNull(chunkTokens, "chunkTokens");
        if (chunkNanos.length != chunkTokens.length) {
            throw new IllegalArgumentException("chunkNanos and chunkTokens differ in length");
        }
    }

    /** Whether the request finished without error. */
    public boolean ok() {
        return error == null;
    }

    /** Tokens received. */
    public int outputTokens() {
        return Arrays.stream(chunkTokens).sum();
    }

    /** Time to first token in nanoseconds, or -1 when no token arrived. */
    public long ttftNanos() {
        return chunkNanos.length == 0 ? -1 : chunkNanos[0] - startNanos;
    }

    /** End-to-end latency in nanoseconds. */
    public long e2eNanos() {
        return endNanos - startNanos;
    }

    /** Time per output token after the first, in nanoseconds; NaN for fewer than 2 tokens. */
    public double tpotNanos() {
        int n = outputTokens();
        return n < 2 ? Double.NaN : (double) (e2eNanos() - ttftNanos()) / (n - 1);
    }

    /** The inter-token latencies, one per token after the first (see the class comment), in nanoseconds. */
    public long[] itlNanos() {
        int n = outputTokens();
        long[] itl = new long[Math.max(0, n - 1)];
        int t = 0;
        for (int c = 0; c < chunkNanos.length; c++) {
            for (int k = 0; k < chunkTokens[c]; k++) {
                if (c == 0 && k == 0) {
                    continue; // the first token's latency is the TTFT
                }
                itl[t++] = k == 0 ? chunkNanos[c] - chunkNanos[c - 1] : 0;
            }
        }
        return itl;
    }
}
