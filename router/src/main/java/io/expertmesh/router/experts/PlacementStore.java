package io.expertmesh.router.experts;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Where the expert placement lives: in this router alone ({@link #local()}), or shared by every router of a
 * cluster ({@link HazelcastPlacementStore}). Changes run {@link #exclusively} (one router at a time) and
 * replace the plan only through {@link #advance} (compare-and-set on the epoch); every router adopts each
 * published plan and reports the epoch it dispatches by, so a change can wait for all of them before it
 * unloads the copies the old plan used.
 */
public interface PlacementStore extends AutoCloseable {

    /** This router's name in the store. */
    String routerId();

    /**
     * Runs {@code change} while no other router changes the placement.
     *
     * @param wait  how long to wait for another router's change to end
     * @param lease the longest the change may hold the others off (a router that dies holding it frees it)
     * @throws IllegalStateException when another router's change did not end within {@code wait}
     */
    <T> T exclusively(Duration wait, Duration lease, Supplier<T> change);

    /** The plan in force; null before the first one. */
    SharedPlan current();

    /**
     * Replaces the plan of {@code expectedEpoch} (0: none yet) by {@code next}.
     *
     * @throws StalePlanException when the plan is not at {@code expectedEpoch}, or {@code next}'s epoch is not
     *                            above it
     */
    void advance(long expectedEpoch, SharedPlan next);

    /** Calls {@code listener} with every plan published from now on, by any router (not on the caller's thread). */
    void onPublished(Consumer<SharedPlan> listener);

    /**
     * Reports that this router dispatches by {@code epoch}, counts load in {@code window} and is alive; a router
     * that stops reporting is forgotten after the store's time-to-live.
     */
    void report(long epoch, long window, Supplier<long[][]> load);

    /** The epoch every live router dispatches by, this one included, by router id. */
    Map<String, Long> acknowledged();

    /** The load other live routers counted in {@code window} ([layer][expert], null rows for dense layers). */
    List<long[][]> otherLoads(long window);

    /** True when other routers may share this store. */
    boolean shared();

    @Override
    void close();

    /** A store for one router alone: today's behaviour of a router without a shared tier. */
    static PlacementStore local() {
        return new LocalPlacementStore();
    }
}
