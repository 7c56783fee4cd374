package io.expertmesh.router.experts;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Supplier;

/** The placement of a router that shares it with nobody: held in memory, acknowledged by itself alone. */
final class LocalPlacementStore implements PlacementStore {
    private final ReentrantLock lock = new ReentrantLock();
    private volatile SharedPlan current;
    private volatile long acknowledged;

    @Override
    public String routerId() {
        return "local";
    }

    @Override
    public <T> T exclusively(Duration wait, Duration lease, Supplier<T> change) {
        lock.lock();
        try {
            return change.get();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public SharedPlan current() {
        return current;
    }

    @Override
    public synchronized void advance(long expectedEpoch, SharedPlan next) {
        String refused = AdvancePlan.apply(current, expectedEpoch, next, p -> current = p);
        if (refused != null) {
            throw new StalePlanException(refused);
        }
    }

    @Override
    public void onPublished(Consumer<SharedPlan> listener) {
        // the only publisher is this router, which adopts what it publishes itself
    }

    @Override
    public void report(long epoch, long window, Supplier<long[][]> load) {
        acknowledged = epoch;
    }

    @Override
    public Map<String, Long> acknowledged() {
        return Map.of(routerId(), acknowledged);
    }

    @Override
    public List<long[][]> otherLoads(long window) {
        return List.of();
    }

    @Override
    public boolean shared() {
        return false;
    }

    @Override
    public void close() {
    }
}
