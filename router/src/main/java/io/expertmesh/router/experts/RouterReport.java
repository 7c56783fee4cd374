package io.expertmesh.router.experts;

import java.io.Serializable;

/**
 * What one router tells the others through the shared store, refreshed every health interval and forgotten
 * after the store's time-to-live: the epoch it dispatches by (its acknowledgement of that plan), and the load it
 * counted in {@code window} ([layer][expert]; null rows for dense layers).
 */
record RouterReport(long epoch, long window, long[][] load) implements Serializable {
}
