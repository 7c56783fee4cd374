package io.expertmesh.router.experts;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.protobuf.UnsafeByteOperations;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.core.model.RoutedExperts;
import io.expertmesh.core.model.Scratch.Slot;
import io.expertmesh.core.model.StepContext;
import io.expertmesh.core.tensor.HiddenCodec;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.OutputMode;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The routed experts of one MoE layer, run on expert workers: {@link #start} groups the step's (token, expert)
 * pairs by the worker holding each expert (an expert with several replicas goes to the one with the fewest pairs
 * so far), sends one RunExperts call per worker, all in parallel, each with a deadline; {@link Pending#finish}
 * waits for them with the compute lock released (so a second micro-batch computes meanwhile), re-sends the
 * pairs of a failed worker to the experts' other replicas (or to workers they were reassigned to) and adds
 * the results. A call that outlives its worker's hedge time ({@link ExpertClusterConfig.Hedge}) is cancelled and
 * its pairs re-sent to other replicas; a call to a worker taken out while it was in flight is cancelled at once
 * (see {@link WorkerClient#markDown}) and its pairs re-sent. In {@link WireFormat#EXACT} the per-expert outputs are added here in ascending expert id, exactly
 * as {@link io.expertmesh.core.model.LocalExperts} adds them in one process.
 */
final class RemoteExperts implements RoutedExperts {
    /** The status of a call given up on as slow: its pairs are re-sent, its worker is not taken out. */
    private static final Status HEDGED = Status.DEADLINE_EXCEEDED.withDescription("hedged: re-sent to a replica");
    private final ExpertCluster cluster;
    private final int layer;
    private final int hidden;

    RemoteExperts(ExpertCluster cluster, int layer, int hidden) {
        this.cluster = cluster;
        this.layer = layer;
        this.hidden = hidden;
    }

    @Override
    public void run(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out, StepContext ctx) {
        start(xn, tokens, ids, weights, topK, out, ctx).finish();
    }

    @Override
    public Pending start(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out,
                         StepContext ctx) {
        // The outputs land in the step's scratch: this forward pass uses it for nothing else until finish().
        float[] rows = cluster.config().wire() == WireFormat.EXACT
                ? ctx.scratch().floats(Slot.DISPATCH_ROWS, tokens * topK * hidden) : null;
        Dispatch d = new Dispatch(xn, tokens, Arrays.copyOf(ids, tokens * topK),
                Arrays.copyOf(weights, tokens * topK), topK, out, rows, ctx.kernels());
        cluster.load().record(layer, d.ids);
        d.send(allPairs(tokens * topK));
        return d::finish;
    }

    private static int[] allPairs(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        return p;
    }

    /** One layer's dispatch: its calls in flight and the results gathered so far. */
    private final class Dispatch {
        final float[] xn;
        final int tokens;
        final int[] ids;
        final float[] weights;
        final int topK;
        final float[] out;
        final Kernels kernels;
        final boolean exact = cluster.config().wire() == WireFormat.EXACT;
        final HiddenCodec codec = HiddenCodec.exact(exact);
        final long startNanos = System.nanoTime();
        /** EXACT: row p = expert ids[p]'s output for its token, unweighted (every row is written before use). */
        final float[] rows;
        /** BF16: per worker call, its tokens' weighted sums, added in worker order at the end. */
        final Map<String, List<float[]>> sums = new TreeMap<>();
        final Map<String, List<int[]>> sumTokens = new TreeMap<>();
        List<Call> calls = new ArrayList<>();
        /** Workers whose calls of this dispatch were given up on as slow: other replicas are preferred. */
        final Set<String> slow = new HashSet<>();
        /** Failed calls whose worker said it does not hold the experts (it restarted): reload, not take out. */
        final Set<Call> notHeld = new HashSet<>();
        long epoch;
        int attempts;

        Dispatch(float[] xn, int tokens, int[] ids, float[] weights, int topK, float[] out, float[] rows,
                 Kernels kernels) {
            this.xn = xn;
            this.tokens = tokens;
            this.ids = ids;
            this.weights = weights;
            this.topK = topK;
            this.out = out;
            this.kernels = kernels;
            this.rows = rows;
        }

        /** Sends {@code pairs} (ascending) under the current placement. */
        void send(int[] pairs) {
            ExpertPlacement plan = cluster.placementFor(layer, ids, pairs);
            epoch = plan.epoch();
            Map<String, List<Integer>> byWorker = new LinkedHashMap<>();
            Map<String, Integer> assigned = new LinkedHashMap<>();
            List<String> missing = new ArrayList<>();
            for (int p : pairs) {
                String best = null;
                boolean bestSlow = false;
                for (String w : plan.replicasUnsafe(layer, ids[p])) {
                    if (!cluster.isLive(w)) {
                        continue;
                    }
                    boolean isSlow = slow.contains(w);
                    if (best == null || (bestSlow && !isSlow)
                            || (bestSlow == isSlow && assigned.getOrDefault(w, 0) < assigned.get(best))) {
                        best = w;
                        bestSlow = isSlow;
                        assigned.putIfAbsent(w, 0);
                    }
                }
                if (best == null) {
                    missing.add(String.valueOf(ids[p]));
                    continue;
                }
                assigned.merge(best, 1, Integer::sum);
                byWorker.computeIfAbsent(best, k -> new ArrayList<>()).add(p);
            }
            if (!missing.isEmpty()) {
                throw new ExpertsUnavailableException("no live expert worker holds layer " + layer + " expert(s) "
                        + String.join(", ", missing.stream().distinct().toList()));
            }
            calls = new ArrayList<>();
            byWorker.forEach((w, ps) -> calls.add(call(w, ps.stream().mapToInt(Integer::intValue).toArray())));
        }

        Call call(String worker, int[] pairs) {
            // pairs ascend, so tokens come in ascending order, each with its pairs contiguous.
            RunExpertsRequest.Builder req = RunExpertsRequest.newBuilder().setLayer(layer).setHiddenSize(hidden)
                    .setEncoding(exact ? HiddenEncoding.HIDDEN_ENCODING_F32 : HiddenEncoding.HIDDEN_ENCODING_BF16)
                    .setOutputMode(exact ? OutputMode.OUTPUT_MODE_PER_ASSIGNMENT : OutputMode.OUTPUT_MODE_COMBINED);
            List<Integer> tokenList = new ArrayList<>();
            int count = 0;
            for (int i = 0; i < pairs.length; i++) {
                int t = pairs[i] / topK;
                req.addExpertIds(ids[pairs[i]]).addWeights(weights[pairs[i]]);
                count++;
                if (i + 1 == pairs.length || pairs[i + 1] / topK != t) {
                    tokenList.add(t);
                    req.addAssignmentsPerToken(count);
                    count = 0;
                }
            }
            int[] toks = tokenList.stream().mapToInt(Integer::intValue).toArray();
            req.setNumTokens(toks.length).setHiddenStates(UnsafeByteOperations.unsafeWrap(
                    codec.encodeRows(xn, toks, hidden)));
            WorkerClient client = cluster.client(worker);
            return new Call(client, pairs, toks, System.nanoTime(),
                    client.run(req.build(), cluster.config().dispatchTimeout()));
        }

        void finish() {
            while (true) {
                List<Call> failed = new ArrayList<>();
                List<Status> statuses = new ArrayList<>();
                cluster.whileWaiting(() -> {
                    for (Call c : calls) {
                        Status s = await(c);
                        if (!s.isOk()) {
                            failed.add(c);
                            statuses.add(s);
                        }
                    }
                });
                if (failed.isEmpty()) {
                    break;
                }
                if (++attempts > cluster.maxAttempts()) {
                    throw new ExpertsUnavailableException("layer " + layer + ": expert calls kept failing after "
                            + attempts + " attempts; last: " + statuses.getLast());
                }
                List<Integer> retry = new ArrayList<>();
                // Taking a worker out may load experts elsewhere (seconds): let the other micro-batch compute.
                cluster.whileWaiting(() -> {
                    for (int i = 0; i < failed.size(); i++) {
                        if (statuses.get(i) != HEDGED) {
                            cluster.onCallFailed(failed.get(i).client.address(), statuses.get(i),
                                    notHeld.contains(failed.get(i)), epoch, layer);
                        }
                    }
                });
                for (Call c : failed) {
                    for (int p : c.pairs) {
                        retry.add(p);
                    }
                }
                send(retry.stream().mapToInt(Integer::intValue).sorted().toArray());
            }
            combine();
            cluster.onLayerDone(layer, tokens, System.nanoTime() - startNanos);
        }

        /**
         * Waits for one call and keeps its outputs; its status: {@link #HEDGED} when it outlived its worker's hedge
         * time while another replica could take some of its pairs, UNAVAILABLE when its worker was taken out.
         */
        Status await(Call c) {
            RunExpertsResponse r;
            ExpertClusterConfig.Hedge hedge = cluster.config().hedge();
            long hedgeAfter = c.client.hedgeAfterNanos(hedge.p99Multiple(), hedge.floor(), hedge.minCalls());
            if (hedgeAfter != Long.MAX_VALUE && !hedgeable(c)) {
                hedgeAfter = Long.MAX_VALUE; // the scan over the call's pairs only when a hedge time exists
            }
            try {
                if (hedgeAfter == Long.MAX_VALUE) {
                    r = c.future.get();
                } else {
                    long left = c.sentNanos + hedgeAfter - System.nanoTime();
                    r = c.future.get(Math.max(0, left), TimeUnit.NANOSECONDS);
                }
            } catch (TimeoutException e) {
                c.future.cancel(false);
                slow.add(c.client.address());
                cluster.onHedged(layer, c.client, System.nanoTime() - c.sentNanos);
                return HEDGED;
            } catch (CancellationException e) {
                Status s = Status.UNAVAILABLE.withDescription("expert worker " + c.client.address()
                        + " was taken out while the call was in flight (" + c.client.lastError() + ")");
                cluster.onRpc(layer, c.client, c.tokens.length, System.nanoTime() - c.sentNanos, s);
                return s;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                c.future.cancel(true);
                throw new IllegalStateException("interrupted waiting for expert worker " + c.client.address(), e);
            } catch (ExecutionException e) {
                Status s = Status.fromThrowable(e.getCause());
                if (WorkerErrors.expertsNotHeld(e.getCause())) {
                    notHeld.add(c);
                }
                cluster.onRpc(layer, c.client, c.tokens.length, System.nanoTime() - c.sentNanos, s);
                return s;
            }
            int values = (exact ? c.pairs.length : c.tokens.length) * hidden;
            if (r.getOutputs().size() != values * codec.width()) {
                Status s = Status.INTERNAL.withDescription("worker " + c.client.address() + " returned "
                        + r.getOutputs().size() + " output bytes, expected " + values * codec.width());
                cluster.onRpc(layer, c.client, c.tokens.length, System.nanoTime() - c.sentNanos, s);
                return s;
            }
            long took = System.nanoTime() - c.sentNanos;
            cluster.onRpc(layer, c.client, c.tokens.length, took, Status.OK);
            cluster.onRpcTimes(layer, c.client, took, r.getQueueMicros(), r.getComputeMicros());
            if (exact) {
                // slice(): the outputs may be a view into the received frame (RunExpertsWire), starting at an offset
                java.nio.ByteBuffer bytes = r.getOutputs().asReadOnlyByteBuffer().slice();
                for (int i = 0; i < c.pairs.length; i++) {
                    bytes.position(i * hidden * 4);
                    HiddenCodec.F32.decode(bytes, rows, c.pairs[i] * hidden, hidden);
                }
            } else {
                float[] sum = new float[values];
                HiddenCodec.BF16.decode(r.getOutputs().asReadOnlyByteBuffer(), sum, 0, values);
                sums.computeIfAbsent(c.client.address(), k -> new ArrayList<>()).add(sum);
                sumTokens.computeIfAbsent(c.client.address(), k -> new ArrayList<>()).add(c.tokens);
            }
            return Status.OK;
        }

        /** Whether some of the call's pairs have a live replica on another worker to be re-sent to. */
        boolean hedgeable(Call c) {
            ExpertPlacement plan = cluster.placement();
            for (int p : c.pairs) {
                for (String w : plan.replicasUnsafe(layer, ids[p])) {
                    if (!w.equals(c.client.address()) && !slow.contains(w) && cluster.isLive(w)) {
                        return true;
                    }
                }
            }
            return false;
        }

        void combine() {
            if (exact) {
                // Per token, its experts in ascending id, as LocalExperts adds them (insertion sort: k is small).
                int[] order = new int[topK];
                for (int t = 0; t < tokens; t++) {
                    for (int j = 0; j < topK; j++) {
                        int p = t * topK + j;
                        int i = j;
                        for (; i > 0 && ids[order[i - 1]] > ids[p]; i--) {
                            order[i] = order[i - 1];
                        }
                        order[i] = p;
                    }
                    for (int p : order) {
                        kernels.axpy(weights[p], rows, p * hidden, out, t * hidden, hidden);
                    }
                }
            } else {
                sums.forEach((w, parts) -> {
                    List<int[]> toks = sumTokens.get(w);
                    for (int k = 0; k < parts.size(); k++) {
                        int[] ts = toks.get(k);
                        for (int i = 0; i < ts.length; i++) {
                            kernels.axpy(1f, parts.get(k), i * hidden, out, ts[i] * hidden, hidden);
                        }
                    }
                });
            }
        }
    }

    /** One RunExperts call: the pairs it carries and the tokens they belong to, ascending. */
    private record Call(WorkerClient client, int[] pairs, int[] tokens, long sentNanos,
                        ListenableFuture<RunExpertsResponse> future) {
    }
}
