package io.expertmesh.proto.wire;

import io.expertmesh.proto.expert.v1.ExpertServiceGrpc;
import io.expertmesh.proto.expert.v1.RunExpertsRequest;
import io.expertmesh.proto.expert.v1.RunExpertsResponse;
import io.grpc.BindableService;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;

/**
 * The RunExperts method as routers call it and workers serve it: the side that receives a message parses it with
 * {@link AliasingMarshaller} (the large bytes field is not copied). The wire format is protobuf's, unchanged, so
 * either side works with a peer using the generated descriptor.
 */
public final class RunExpertsWire {
    /** What a router calls: answers are parsed with aliasing. */
    public static final MethodDescriptor<RunExpertsRequest, RunExpertsResponse> CLIENT_METHOD =
            ExpertServiceGrpc.getRunExpertsMethod().toBuilder()
                    .setResponseMarshaller(AliasingMarshaller.of(RunExpertsResponse.getDefaultInstance()))
                    .build();

    private RunExpertsWire() {
    }

    /**
     * {@code service}'s definition with RunExperts requests parsed with aliasing (a service built from these
     * methods, so its descriptor has no proto schema for server reflection; the worker does not register one).
     */
    public static ServerServiceDefinition serverDefinition(BindableService service) {
        ServerServiceDefinition bound = service.bindService();
        String name = bound.getServiceDescriptor().getName();
        ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(name);
        String runExperts = ExpertServiceGrpc.getRunExpertsMethod().getFullMethodName();
        for (ServerMethodDefinition<?, ?> m : bound.getMethods()) {
            if (m.getMethodDescriptor().getFullMethodName().equals(runExperts)) {
                @SuppressWarnings("unchecked")
                ServerMethodDefinition<RunExpertsRequest, RunExpertsResponse> run =
                        (ServerMethodDefinition<RunExpertsRequest, RunExpertsResponse>) m;
                MethodDescriptor<RunExpertsRequest, RunExpertsResponse> aliased = run.getMethodDescriptor()
                        .toBuilder()
                        .setRequestMarshaller(AliasingMarshaller.of(RunExpertsRequest.getDefaultInstance()))
                        .build();
                b.addMethod(ServerMethodDefinition.create(aliased, run.getServerCallHandler()));
            } else {
                b.addMethod(m);
            }
        }
        return b.build();
    }
}
