package io.expertmesh.worker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.expertmesh.core.kernel.Kernels;
import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.GetWorkerStatusRequest;
import io.expertmesh.proto.expert.v1.GetWorkerStatusResponse;
import io.expertmesh.proto.expert.v1.HiddenEncoding;
import io.expertmesh.proto.expert.v1.LayerExperts;
import io.expertmesh.proto.expert.v1.LayerStatus;
import io.expertmesh.proto.expert.v1.LoadExpertsRequest;
import io.expertmesh.proto.expert.v1.LoadExpertsResponse;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.expertmesh.proto.expert.v1.UnloadExpertsRequest;
import io.expertmesh.proto.expert.v1.UnloadExpertsResponse;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** ExpertService in process on the tiny DeepSeek-V3 fixture. */
class ExpertServiceTest {
    private static final int[] ALL = {0, 1, 2, 3, 4, 5, 6, 7};
    private final Kernels kernels = WorkerFixture.kernels();
    private ExpertWorkerServer server;
    private ManagedChannel channel;

    private ExpertServiceGrpc.ExpertServiceBlockingStub start(String experts) throws Exception {
        String name = InProcessServerBuilder.generateName();
        server = new ExpertWorkerServer(new WorkerConfig(WorkerFixture.MODEL, 0, ExpertSelection.parse(experts)),
                kernels, InProcessServerBuilder.forName(name).directExecutor()).start();
        server.awaitLoaded();
        channel = InProcessChannelBuilder.forName(name).directExecutor().build();
        return ExpertServiceGrpc.newBlockingStub(channel);
    }

    @AfterEach
    void stop() {
        if (channel != null) {
            channel.shutdownNow();
        }
        if (server != null) {
            server.close();
        }
    }

    private static float[] outputs(RunExpertsResponse r, RunExpertsRequest req) {
        return WorkerFixture.decode(r.getOutputs(), r.getEncoding(), req.getNumTokens() * WorkerFixture.HIDDEN);
    }

    @Test
    void runExperts_f32RandomAssignments_bitIdenticalToLocalExperts() throws Exception {
        ExpertServiceGrpc.ExpertServiceBlockingStub stub = start("all");
        Random rnd = new Random(11);
        for (int layer : new int[]{1, 2}) {
            for (int tokens : new int[]{1, 5, 17}) {
                RunExpertsRequest req = WorkerFixture.randomRequest(rnd, layer, tokens,
                        HiddenEncoding.HIDDEN_ENCODING_F32, ALL);
                RunExpertsResponse r = stub.runExperts(req);
                assertEquals(HiddenEncoding.HIDDEN_ENCODING_F32, r.getEncoding());
                assertEquals(tokens * WorkerFixture.HIDDEN * 4, r.getOutputs().size());
                assertArrayEquals(WorkerFixture.reference(req, kernels), outputs(r, req),
                        "layer " + layer + ", " + tokens + " tokens");
            }
        }
    }

    @Test
    void runExperts_bf16_equalsLocalResultOnRoundedInputs() throws Exception {
        ExpertServiceGrpc.ExpertServiceBlockingStub stub = start("all");
        Random rnd = new Random(12);
        RunExpertsRequest req = WorkerFixture.randomRequest(rnd, 2, 9, HiddenEncoding.HIDDEN_ENCODING_BF16, ALL);
        RunExpertsResponse r = stub.runExperts(req);
        assertEquals(HiddenEncoding.HIDDEN_ENCODING_BF16, r.getEncoding());
        assertEquals(9 * WorkerFixture.HIDDEN * 2, r.getOutputs().size());
        float[] got = outputs(r, req);
        assertArrayEquals(WorkerFixture.reference(req, kernels), got);
        assertTrue(java.util.stream.IntStream.range(0, got.length).anyMatch(i -> got[i] != 0f), "all zeros");
    }

    @Test
    void runExperts_gateWeights_scaleTheOutputAndRowsStayApart() throws Exception {
        ExpertServiceGrpc.ExpertServiceBlockingStub stub = start("all");
        RunExpertsRequest one = WorkerFixture.randomRequest(new Random(13), 1, 3,
                HiddenEncoding.HIDDEN_ENCODING_F32, new int[]{5});
        RunExpertsRequest.Builder doubled = one.toBuilder().clearWeights();
        for (float w : one.getWeightsList()) {
            doubled.addWeights(w * 2);
        }
        float[] a = outputs(stub.runExperts(one), one);
        float[] b = outputs(stub.runExperts(doubled.build()), one);
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i] * 2, b[i], Math.abs(a[i]) * 1e-5f + 1e-7f, "weight not applied at " + i);
        }
        // three different tokens through the same expert: three different rows
        assertTrue(a[0] != a[WorkerFixture.HIDDEN] && a[WorkerFixture.HIDDEN] != a[2 * WorkerFixture.HIDDEN]);
    }

    private record Bad(String what, UnaryOperator<RunExpertsRequest.Builder> edit, Status.Code code,
                       String message) {
    }

    @Test
    void runExperts_badInputs_rightStatusAndWorkerStaysHealthy() throws Exception {
        ExpertServiceGrpc.ExpertServiceBlockingStub stub = start("all");
        RunExpertsRequest good = WorkerFixture.randomRequest(new Random(14), 1, 4,
                HiddenEncoding.HIDDEN_ENCODING_F32, ALL);
        List<Bad> cases = List.of(
                new Bad("wrong hidden size", b -> b.setHiddenSize(63), Status.Code.FAILED_PRECONDITION,
                        "hidden_size 63"),
                new Bad("dense layer", b -> b.setLayer(0), Status.Code.FAILED_PRECONDITION,
                        "layer 0 is not an MoE layer"),
                new Bad("layer beyond the model", b -> b.setLayer(3), Status.Code.FAILED_PRECONDITION,
                        "layer 3 is not an MoE layer"),
                new Bad("negative layer", b -> b.setLayer(-1), Status.Code.FAILED_PRECONDITION,
                        "layer -1 is not an MoE layer"),
                new Bad("unknown expert", b -> b.setExpertIds(0, 8), Status.Code.FAILED_PRECONDITION,
                        "unknown expert id 8"),
                new Bad("negative expert", b -> b.setExpertIds(0, -2), Status.Code.FAILED_PRECONDITION,
                        "unknown expert id -2"),
                new Bad("truncated bytes", b -> b.setHiddenStates(b.getHiddenStates().substring(1)),
                        Status.Code.INVALID_ARGUMENT, "hidden_states has 1023 bytes"),
                new Bad("bf16 width for f32 bytes", b -> b.setEncoding(HiddenEncoding.HIDDEN_ENCODING_BF16),
                        Status.Code.INVALID_ARGUMENT, "expected num_tokens 4"),
                new Bad("no bytes", b -> b.setHiddenStates(ByteString.EMPTY), Status.Code.INVALID_ARGUMENT,
                        "hidden_states has 0 bytes"),
                new Bad("zero tokens", b -> b.setNumTokens(0), Status.Code.INVALID_ARGUMENT, "num_tokens"),
                new Bad("too many tokens", b -> b.setNumTokens(1 << 30), Status.Code.INVALID_ARGUMENT,
                        "hidden_states has"),
                new Bad("NaN weight", b -> b.setWeights(0, Float.NaN), Status.Code.INVALID_ARGUMENT,
                        "is not finite"),
                new Bad("infinite weight", b -> b.setWeights(1, Float.POSITIVE_INFINITY),
                        Status.Code.INVALID_ARGUMENT, "is not finite"),
                new Bad("missing weight", b -> b.setWeights(0, 1f).clearWeights().addWeights(1f),
                        Status.Code.INVALID_ARGUMENT, "weights"),
                new Bad("counts not one per token", b -> b.addAssignmentsPerToken(1), Status.Code.INVALID_ARGUMENT,
                        "one per token"),
                new Bad("zero assignments", b -> b.setAssignmentsPerToken(0, 0), Status.Code.INVALID_ARGUMENT,
                        "assignments_per_token[0] is 0"),
                new Bad("unknown encoding", b -> b.setEncodingValue(7), Status.Code.INVALID_ARGUMENT,
                        "unknown hidden encoding 7"),
                new Bad("unknown output mode", b -> b.setOutputModeValue(9), Status.Code.INVALID_ARGUMENT,
                        "unknown output mode 9"),
                new Bad("expert twice in a token", b -> b.clearAssignmentsPerToken().clearExpertIds().clearWeights()
                        .addAllAssignmentsPerToken(List.of(2, 1, 1, 1)).addAllExpertIds(List.of(3, 3, 1, 2, 4))
                        .addAllWeights(List.of(1f, 1f, 1f, 1f, 1f)), Status.Code.INVALID_ARGUMENT,
                        "names expert 3 twice"));
        for (Bad c : cases) {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                    () -> stub.runExperts(c.edit.apply(good.toBuilder()).build()), c.what);
            assertEquals(c.code, e.getStatus().getCode(), c.what + ": " + e.getStatus());
            assertTrue(e.getStatus().getDescription().contains(c.message),
                    c.what + ": '" + e.getStatus().getDescription() + "' should say '" + c.message + "'");
        }
        assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel)
                .check(HealthCheckRequest.newBuilder().setService(ExpertServiceGrpc.SERVICE_NAME).build())
                .getStatus());
        assertArrayEquals(WorkerFixture.reference(good, kernels), outputs(stub.runExperts(good), good));
    }

    @Test
    void runExperts_evenShard_refusesOddExpertNamingIt() throws Exception {
        ExpertServiceGrpc.ExpertServiceBlockingStub stub = start("shard:0/2");
        RunExpertsRequest even = WorkerFixture.randomRequest(new Random(15), 1, 6,
                HiddenEncoding.HIDDEN_ENCODING_F32, new int[]{0, 2, 4, 6});
        assertArrayEquals(WorkerFixture.reference(even, kernels), outputs(stub.runExperts(even), even));
        RunExpertsRequest odd = even.toBuilder().setExpertIds(1, 5).build();
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stub.runExperts(odd));
        assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
        assertTrue(e.getStatus().getDescription().contains("expert 5 not held"), e.getStatus().getDescription());
        // the router reads the typed reason, not the text
        com.google.rpc.ErrorInfo info = io.grpc.protobuf.StatusProto.fromThrowable(e).getDetails(0)
                .unpack(com.google.rpc.ErrorInfo.class);
        assertEquals("ERROR_REASON_EXPERTS_NOT_HELD", info.getReason());
        assertEquals(ExpertServiceImpl.ERROR_DOMAIN, info.getDomain());
        assertEquals("5", info.getMetadataOrThrow("experts"));
    }

    @Test
    void loadAndUnload_thenStatusReflectsIt() throws Exception {
        ExpertServiceGrpc.ExpertServiceBlockingStub stub = start("0-1");
        GetWorkerStatusResponse s0 = stub.getWorkerStatus(GetWorkerStatusRequest.getDefaultInstance());
        assertEquals(List.of(1, 2), s0.getMoeLayersList());
        assertEquals(WorkerFixture.HIDDEN, s0.getHiddenSize());
        assertEquals(WorkerFixture.EXPERTS, s0.getNumRoutedExperts());
        assertEquals("DeepseekV3ForCausalLM", s0.getArchitecture());
        assertEquals(List.of(0, 1), s0.getLayers(0).getExpertIdsList());
        assertEquals(List.of(0, 1), s0.getLayers(1).getExpertIdsList());

        LoadExpertsResponse loaded = stub.loadExperts(LoadExpertsRequest.newBuilder()
                .addLayers(LayerExperts.newBuilder().setLayer(2).addAllExpertIds(List.of(7, 1, 3))).build());
        assertEquals(List.of(3, 7), loaded.getLoaded(0).getExpertIdsList(), "1 was already held");
        UnloadExpertsResponse dropped = stub.unloadExperts(UnloadExpertsRequest.newBuilder()
                .addLayers(LayerExperts.newBuilder().setLayer(1).addAllExpertIds(List.of(0, 5))).build());
        assertEquals(List.of(0), dropped.getUnloaded(0).getExpertIdsList(), "5 was not held");

        RunExpertsRequest req = RunExpertsRequest.newBuilder(WorkerFixture.randomRequest(new Random(16), 2, 2,
                HiddenEncoding.HIDDEN_ENCODING_F32, new int[]{7})).build();
        assertArrayEquals(WorkerFixture.reference(req, kernels), outputs(stub.runExperts(req), req));
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stub.runExperts(
                req.toBuilder().setLayer(1).build()));
        assertTrue(e.getStatus().getDescription().contains("layer 1: expert 7 not held"));

        GetWorkerStatusResponse s1 = stub.getWorkerStatus(GetWorkerStatusRequest.getDefaultInstance());
        LayerStatus l1 = s1.getLayers(0);
        LayerStatus l2 = s1.getLayers(1);
        assertEquals(1, l1.getLayer());
        assertEquals(List.of(1), l1.getExpertIdsList());
        assertEquals(2, l2.getLayer());
        assertEquals(List.of(0, 1, 3, 7), l2.getExpertIdsList());
        assertEquals(List.of(0L, 0L, 0L, 2L), l2.getTokensServedList());
        assertEquals(1, s1.getRequestsServed());
        assertEquals(0, s1.getRequestsInFlight());

        StatusRuntimeException bad = assertThrows(StatusRuntimeException.class, () -> stub.loadExperts(
                LoadExpertsRequest.newBuilder().addLayers(LayerExperts.newBuilder().setLayer(0).addExpertIds(1))
                        .build()));
        assertEquals(Status.Code.FAILED_PRECONDITION, bad.getStatus().getCode());
    }
}
