package io.expertmesh.router.experts;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.kernel.VectorKernels;
import io.expertmesh.proto.expert.v1.GetWorkerStatusResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The expert workers a router knows, in the order they joined, each with its {@link WorkerClient} (channel,
 * liveness, what the router measured of it); and the check that a worker serves this router's model.
 */
final class WorkerRegistry implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerRegistry.class);
    /**
     * What a single process on this router's machine would compute the experts with: the kernels this process
     * makes by default. A worker that reports another kind still serves (its results agree to float rounding),
     * but the cluster's tokens are then no longer bit for bit those of one process.
     */
    private static final String OWN_KERNELS = "cpu, " + VectorKernels.defaultMatmulKind();

    private final ModelConfig model;
    private final int[] moeLayers;
    private final WorkerChannels channels;
    private final Map<String, WorkerClient> clients = new ConcurrentHashMap<>();
    /** Worker addresses in the order they joined. */
    private final List<String> order = new CopyOnWriteArrayList<>();
    /** Workers whose last status named other expert kernels than {@link #OWN_KERNELS}. */
    private final Set<String> otherKernels = ConcurrentHashMap.newKeySet();

    WorkerRegistry(ModelConfig model, int[] moeLayers, WorkerChannels channels) {
        this.model = model;
        this.moeLayers = moeLayers.clone();
        this.channels = channels;
    }

    /** Adds a worker, live until a check says otherwise; the address must be new. */
    synchronized WorkerClient add(String address) {
        WorkerClient c = new WorkerClient(address, channels);
        clients.put(address, c);
        order.add(address);
        return c;
    }

    /** Adds a worker another router checked, live until a check here says otherwise; nothing if known. */
    synchronized void addIfAbsent(String address) {
        if (!clients.containsKey(address)) {
            add(address);
        }
    }

    /** Adds a worker that is out until its health check admits it; false if the address is known already. */
    synchronized boolean addOut(String address, String why) {
        if (clients.containsKey(address)) {
            return false;
        }
        WorkerClient c = new WorkerClient(address, channels);
        c.markDown(why);
        clients.put(address, c);
        order.add(address);
        return true;
    }

    WorkerClient get(String address) {
        return clients.get(address);
    }

    boolean isLive(String address) {
        WorkerClient c = clients.get(address);
        return c != null && c.live();
    }

    /** Every known worker's address, in join order. */
    List<String> all() {
        return order;
    }

    /** Live workers in join order. */
    List<String> live() {
        return order.stream().filter(w -> clients.get(w).live()).toList();
    }

    /** Fails unless the worker serves this model (same architecture, widths, experts and MoE layers). */
    void checkServesModel(WorkerClient c, Duration deadline) {
        GetWorkerStatusResponse s = c.status(deadline);
        int[] theirs = s.getMoeLayersList().stream().mapToInt(Integer::intValue).toArray();
        List<String> wrong = new ArrayList<>();
        if (!s.getArchitecture().equals(model.architecture().hfName())) {
            wrong.add("architecture " + s.getArchitecture() + " vs " + model.architecture().hfName());
        }
        if (s.getHiddenSize() != model.hiddenSize()) {
            wrong.add("hidden size " + s.getHiddenSize() + " vs " + model.hiddenSize());
        }
        if (s.getNumRoutedExperts() != model.numRoutedExperts()) {
            wrong.add("routed experts " + s.getNumRoutedExperts() + " vs " + model.numRoutedExperts());
        }
        if (!Arrays.equals(moeLayers, theirs)) {
            wrong.add("MoE layers " + Arrays.toString(theirs) + " vs " + Arrays.toString(moeLayers));
        }
        if (!wrong.isEmpty()) {
            throw new IllegalStateException("expert worker " + c.address() + " serves another model ("
                    + s.getModel() + "): " + String.join("; ", wrong));
        }
        checkKernels(c.address(), s.getExpertKernels());
    }

    /** Warns once when a worker computes with other kernels than this process would (empty: an older worker). */
    private void checkKernels(String address, String theirs) {
        if (theirs.isEmpty() || theirs.equals(OWN_KERNELS)) {
            otherKernels.remove(address);
        } else if (otherKernels.add(address)) {
            LOG.warn("Expert worker {} computes experts with {}, this router with {}: with BF16, FP8, int8 or int4 "
                    + "weights the tokens agree with a single process to float rounding, not bit for bit (run "
                    + "router and workers on the same CPU kind for that)", address, theirs, OWN_KERNELS);
        }
    }

    /** Workers whose experts are computed by other kernels than this process's (see {@link #OWN_KERNELS}). */
    Set<String> withOtherKernels() {
        return Set.copyOf(otherKernels);
    }

    @Override
    public void close() {
        clients.values().forEach(WorkerClient::close);
    }
}
