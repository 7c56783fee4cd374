package io.expertmesh.client;

/** A streaming Generate in progress, as returned by {@code ExpertMeshClient.generate(request, listener)}. */
public interface GenerateCall {
    /**
     * Cancels the generation: the router stops the sequence and frees its KV blocks; the listener gets
     * {@link GenerateListener#onError} with CANCELLED unless the generation had already ended.
     */
    void cancel(String reason);
}
