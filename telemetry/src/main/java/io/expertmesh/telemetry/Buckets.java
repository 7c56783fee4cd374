package io.expertmesh.telemetry;

import java.util.List;

/** Histogram bucket boundaries shared by routers and workers. */
public final class Buckets {
    private Buckets() {
    }

    /**
     * One expert RPC, seconds: from 100 µs (a few tokens on a fast worker, loopback) to 10 s (a long prefill
     * chunk of a large model); about three buckets per decade.
     */
    public static final List<Double> RPC_SECONDS = List.of(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
            0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0);
}
