package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.OutputMode;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * What a router does with OUTPUT_MODE_PER_ASSIGNMENT: experts spread over two workers (even / odd ids), each
 * token's entries split by worker, the unweighted outputs added back with the gate weights in ascending expert
 * id — bit-identical to running every expert in one process.
 */
class PerAssignmentCombineTest {

    @Test
    void perAssignment_twoShardsCombinedInExpertOrder_bitIdenticalToOneProcess() throws Exception {
        Kernels kernels = WorkerFixture.kernels();
        List<ExpertWorkerServer> servers = new ArrayList<>();
        List<ManagedChannel> channels = new ArrayList<>();
        try {
            List<ExpertServiceGrpc.ExpertServiceBlockingStub> shards = new ArrayList<>();
            for (String spec : new String[]{"shard:0/2", "shard:1/2"}) {
                String name = InProcessServerBuilder.generateName();
                ExpertWorkerServer s = new ExpertWorkerServer(new WorkerConfig(WorkerFixture.MODEL, 0,
                        ExpertSelection.parse(spec)), kernels, InProcessServerBuilder.forName(name).directExecutor())
                        .start();
                servers.add(s);
                s.awaitLoaded();
                ManagedChannel ch = InProcessChannelBuilder.forName(name).directExecutor().build();
                channels.add(ch);
                shards.add(ExpertServiceGrpc.newBlockingStub(ch));
            }
            RunExpertsRequest all = WorkerFixture.randomRequest(new Random(31), 2, 12,
                    HiddenEncoding.HIDDEN_ENCODING_F32, new int[]{0, 1, 2, 3, 4, 5, 6, 7});
            int hidden = WorkerFixture.HIDDEN;
            int tokens = all.getNumTokens();
            float[] x = WorkerFixture.decode(all.getHiddenStates(), all.getEncoding(), tokens * hidden);
            // entries per token: {expert, weight, output row} gathered from both workers
            List<List<float[]>> perToken = new ArrayList<>();
            for (int t = 0; t < tokens; t++) {
                perToken.add(new ArrayList<>());
            }
            for (int w = 0; w < 2; w++) {
                RunExpertsRequest.Builder b = RunExpertsRequest.newBuilder().setLayer(all.getLayer())
                        .setHiddenSize(hidden).setEncoding(all.getEncoding())
                        .setOutputMode(OutputMode.OUTPUT_MODE_PER_ASSIGNMENT);
                List<Integer> tokenOf = new ArrayList<>();
                java.io.ByteArrayOutputStream xs = new java.io.ByteArrayOutputStream();
                int at = 0;
                for (int t = 0; t < tokens; t++) {
                    int k = all.getAssignmentsPerToken(t);
                    int mine = 0;
                    for (int i = at; i < at + k; i++) {
                        if (all.getExpertIds(i) % 2 == w) {
                            b.addExpertIds(all.getExpertIds(i)).addWeights(all.getWeights(i));
                            tokenOf.add(t);
                            mine++;
                        }
                    }
                    if (mine > 0) {
                        b.addAssignmentsPerToken(mine);
                        xs.writeBytes(WorkerFixture.encode(java.util.Arrays.copyOfRange(x, t * hidden,
                                (t + 1) * hidden), all.getEncoding()).toByteArray());
                    }
                    at += k;
                }
                if (b.getAssignmentsPerTokenCount() == 0) {
                    continue;
                }
                RunExpertsRequest req = b.setNumTokens(b.getAssignmentsPerTokenCount())
                        .setHiddenStates(com.google.protobuf.ByteString.copyFrom(xs.toByteArray())).build();
                RunExpertsResponse r = shards.get(w).runExperts(req);
                assertEquals(OutputMode.OUTPUT_MODE_PER_ASSIGNMENT, r.getOutputMode());
                int n = req.getExpertIdsCount();
                float[] rows = WorkerFixture.decode(r.getOutputs(), r.getEncoding(), n * hidden);
                for (int i = 0; i < n; i++) {
                    float[] e = new float[2 + hidden];
                    e[0] = req.getExpertIds(i);
                    e[1] = req.getWeights(i);
                    System.arraycopy(rows, i * hidden, e, 2, hidden);
                    perToken.get(tokenOf.get(i)).add(e);
                }
            }
            float[] combined = new float[tokens * hidden];
            for (int t = 0; t < tokens; t++) {
                List<float[]> es = perToken.get(t);
                es.sort(Comparator.comparingDouble(e -> e[0]));
                for (float[] e : es) {
                    kernels.axpy(e[1], e, 2, combined, t * hidden, hidden);
                }
            }
            assertArrayEquals(WorkerFixture.reference(all, kernels), combined);
        } finally {
            channels.forEach(ManagedChannel::shutdownNow);
            servers.forEach(ExpertWorkerServer::close);
        }
    }
}
