package io.expertmesh.bench.load;

import io.expertmesh.client.ExpertMeshClient;
import io.expertmesh.client.ExpertMeshException;
import io.expertmesh.client.GenerateCall;
import io.expertmesh.client.GenerateListener;
import io.expertmesh.proto.inference.v1.Finished;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.GeneratedToken;
import io.expertmesh.proto.inference.v1.ModelInfo;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.grpc.Status;
import java.util.List;
import java.util.Objects;

/**
 * Routers over their gRPC API, through the client library (which spreads calls over several routers). Each
 * response message reports its tokens exactly, so the stream's own count is kept.
 */
public final class GrpcTarget implements BenchTarget {
    private final ExpertMeshClient client;
    private final boolean owned;

    /** A target over {@code client}, which stays the caller's to close. */
    public GrpcTarget(ExpertMeshClient client) {
        this(client, false);
    }

    private GrpcTarget(ExpertMeshClient client, boolean owned) {
        this.client = Objects.requireNonNull(client, "client");
        this.owned = owned;
    }

    /** A target that closes {@code client} when it is closed. */
    public static GrpcTarget owning(ExpertMeshClient client) {
        return new GrpcTarget(client, true);
    }

    @Override
    public ServedModel model() {
        ModelInfo info = client.modelInfo();
        return new ServedModel(info.getModelId(), info.getShape().getVocabSize(), info.getShape().getMaxContext());
    }

    @Override
    public InFlight start(Workload.Item item, String requestId, boolean ignoreEos, StreamListener listener) {
        try {
            GenerateCall call = client.generate(request(item, requestId, ignoreEos), new GenerateListener() {
                @Override
                public void onTokens(List<GeneratedToken> tokens) {
                    listener.onTokens(tokens.size());
                }

                @Override
                public void onFinished(Finished finished) {
                    listener.onFinished(finished.getUsage().getPromptTokens(),
                            finished.getUsage().getCachedPromptTokens(), -1);
                }

                @Override
                public void onError(ExpertMeshException error) {
                    fail(listener, error);
                }
            });
            return call::cancel;
        } catch (RuntimeException e) {
            fail(listener, ExpertMeshException.from(e));
            return reason -> { };
        }
    }

    private static void fail(StreamListener listener, ExpertMeshException error) {
        Status.Code code = error.getStatus().getCode();
        String description = error.getStatus().getDescription();
        listener.onError(code == Status.Code.OK ? Status.Code.UNKNOWN : code,
                description != null ? description : error.getMessage());
    }

    static GenerateRequest request(Workload.Item item, String id, boolean ignoreEos) {
        TokenIds.Builder ids = TokenIds.newBuilder();
        for (int t : item.promptIds()) {
            ids.addIds(t);
        }
        return GenerateRequest.newBuilder().setRequestId(id).setTokenIds(ids).setMaxTokens(item.maxTokens())
                .setIgnoreEos(ignoreEos).build();
    }

    @Override
    public String protocol() {
        return "grpc";
    }

    @Override
    public void close() {
        if (owned) {
            client.close();
        }
    }
}
