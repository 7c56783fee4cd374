package io.expertmesh.router.experts;

import com.hazelcast.map.EntryProcessor;
import java.util.Map;

/**
 * The only way the shared plan entry changes: compare-and-set on the epoch, run by the Hazelcast member that
 * owns the entry (and, identically, on its backups). Returns null when {@code next} replaced the plan of
 * {@code expectedEpoch}, else why it was refused: the plan moved on since the caller read it (stale), or
 * {@code next} does not move the epoch forward (bad). No plan at all counts as epoch 0.
 */
record AdvancePlan(long expectedEpoch, SharedPlan next) implements EntryProcessor<String, SharedPlan, String> {

    @Override
    public String process(Map.Entry<String, SharedPlan> entry) {
        return apply(entry.getValue(), expectedEpoch, next, entry::setValue);
    }

    /** The rule itself, shared with the in-process store. */
    static String apply(SharedPlan current, long expectedEpoch, SharedPlan next,
                        java.util.function.Consumer<SharedPlan> set) {
        long at = current == null ? 0 : current.epoch();
        if (at != expectedEpoch) {
            return "stale plan change: made from epoch " + expectedEpoch + " but the placement is at epoch " + at;
        }
        if (next.epoch() <= at) {
            return "bad plan epoch " + next.epoch() + ": it must be above the current epoch " + at;
        }
        set.accept(next);
        return null;
    }
}
