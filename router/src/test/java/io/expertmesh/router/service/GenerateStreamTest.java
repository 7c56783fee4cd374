package io.expertmesh.router.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.core.generate.TokenEvent;
import io.expertmesh.core.sample.FinishReason;
import io.expertmesh.proto.inference.v1.GenerateResponse;
import io.expertmesh.router.engine.Completion;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How a Generate stream ends: OK with a `finished` message, or a status that says what went wrong. */
class GenerateStreamTest {

    /** A call whose transport is always ready, recording what the stream sent. */
    static final class RecordingCall extends ServerCallStreamObserver<GenerateResponse> {
        final List<GenerateResponse> messages = new ArrayList<>();
        Status error;
        boolean completed;

        @Override
        public boolean isCancelled() {
            return false;
        }

        @Override
        public void setOnCancelHandler(Runnable onCancelHandler) {
        }

        @Override
        public void setCompression(String compression) {
        }

        @Override
        public boolean isReady() {
            return true;
        }

        @Override
        public void setOnReadyHandler(Runnable onReadyHandler) {
        }

        @Override
        public void disableAutoInboundFlowControl() {
        }

        @Override
        public void request(int count) {
        }

        @Override
        public void setMessageCompression(boolean enable) {
        }

        @Override
        public void onNext(GenerateResponse value) {
            messages.add(value);
        }

        @Override
        public void onError(Throwable t) {
            error = Status.fromThrowable(t);
        }

        @Override
        public void onCompleted() {
            completed = true;
        }
    }

    static Completion completion(FinishReason reason, String error, boolean unavailable) {
        return new Completion(reason, null, null, 8, 2, 0, 0, 0, 0, error, unavailable);
    }

    static GenerateStream stream(RecordingCall call) {
        return new GenerateStream(call, "r1", false, 64);
    }

    @Test
    void onFinished_error_tokensSentThenInternalNamingTheCause() {
        RecordingCall call = new RecordingCall();
        GenerateStream s = stream(call);
        s.onToken(new TokenEvent(0, 765, "a", Float.NaN, List.of()));
        s.onToken(new TokenEvent(1, 164, "b", Float.NaN, List.of()));
        s.onFinished(completion(FinishReason.ERROR, "sampling failed: logits are not usable", false));
        assertEquals(2, call.messages.stream().mapToInt(GenerateResponse::getTokensCount).sum());
        assertTrue(call.messages.stream().noneMatch(GenerateResponse::hasFinished),
                "an error is not a finished stream");
        assertFalse(call.completed);
        assertEquals(Status.Code.INTERNAL, call.error.getCode());
        assertEquals("sampling failed: logits are not usable", call.error.getDescription());
    }

    @Test
    void onFinished_noWorkerLeft_unavailable() {
        RecordingCall call = new RecordingCall();
        stream(call).onFinished(completion(FinishReason.ERROR, "experts [3] have no live worker", true));
        assertEquals(Status.Code.UNAVAILABLE, call.error.getCode());
    }

    @Test
    void onFinished_length_finishedMessageAndOk() {
        RecordingCall call = new RecordingCall();
        GenerateStream s = stream(call);
        s.onToken(new TokenEvent(0, 765, "a", Float.NaN, List.of()));
        s.onFinished(completion(FinishReason.LENGTH, null, false));
        assertNull(call.error);
        assertTrue(call.completed);
        assertTrue(call.messages.getLast().hasFinished());
    }
}
