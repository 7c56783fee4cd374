package io.expertmesh.bench.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The streams of ExpertMesh, llama-server and vLLM, and broken ones, as a benchmark counts them. */
class OpenAiStreamReaderTest {

    /** What the reader told its listener, in order. */
    static final class Heard implements StreamListener {
        final List<String> events = new ArrayList<>();

        @Override
        public void onTokens(int count) {
            events.add("tokens " + count);
        }

        @Override
        public void onFinished(int promptTokens, int cachedPromptTokens, int outputTokens) {
            events.add("finished " + promptTokens + " " + cachedPromptTokens + " " + outputTokens);
        }

        @Override
        public void onError(Status.Code code, String message) {
            events.add(code + ": " + message);
        }
    }

    static List<String> read(int prompt, String... lines) {
        Heard heard = new Heard();
        OpenAiStreamReader reader = new OpenAiStreamReader(heard, prompt);
        for (String line : lines) {
            if (reader.line(line)) {
                break;
            }
        }
        reader.end();
        return heard.events;
    }

    @Test
    void expertMeshStream_finishChunkCarriesNoToken_usageGivesCounts() {
        List<String> e = read(6,
                "data: {\"choices\":[{\"index\":0,\"text\":\"e\",\"logprobs\":null,\"finish_reason\":null}],"
                        + "\"usage\":null}", "",
                "data: {\"choices\":[{\"index\":0,\"text\":\". \",\"logprobs\":null,\"finish_reason\":null}],"
                        + "\"usage\":null}", "",
                "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\"}],"
                        + "\"usage\":null}", "",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":6,\"completion_tokens\":3,\"total_tokens\":9,"
                        + "\"prompt_tokens_details\":{\"cached_tokens\":4}}}", "",
                "data: [DONE]", "");
        assertEquals(List.of("tokens 1", "tokens 1", "finished 6 4 3"), e);
    }

    @Test
    void llamaServerStream_usageOnTheFinishChunk() {
        List<String> e = read(6,
                "data: {\"choices\":[{\"text\":\"e\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}", "",
                "data: {\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"length\"}],"
                        + "\"usage\":{\"completion_tokens\":1,\"prompt_tokens\":6,\"total_tokens\":7}}", "",
                "data: [DONE]", "");
        assertEquals(List.of("tokens 1", "finished 6 0 1"), e);
    }

    @Test
    void logprobEntries_countTokensExactly_chatDeltasCountOne() {
        List<String> completions = read(2,
                "data: {\"choices\":[{\"text\":\"ab\",\"logprobs\":{\"tokens\":[\"a\",\"b\"]},\"finish_reason\":null}]}",
                "", "data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"stop\"}]}", "");
        assertEquals(List.of("tokens 2", "finished 2 0 -1"), completions);
        List<String> chat = read(2,
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}",
                "", "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}", "",
                "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}", "", "data: [DONE]", "");
        assertEquals(List.of("tokens 1", "finished 2 0 -1"), chat);
    }

    @Test
    void eventSplitOverDataLines_andCommentsAndOtherFields_areRead() {
        List<String> e = read(1, ": keep-alive", "event: message", "data: {\"choices\":[{\"text\":\"x\",",
                "data: \"finish_reason\":\"length\"}]}", "", "data:[DONE]", "");
        assertEquals(List.of("tokens 1", "finished 1 0 -1"), e);
    }

    @Test
    void errorEvent_midStream_failsWithItsCodeAndMessage() {
        List<String> e = read(1, "data: {\"choices\":[{\"text\":\"x\",\"finish_reason\":null}]}", "",
                "data: {\"error\":{\"message\":\"experts unavailable\",\"type\":\"service_unavailable\","
                        + "\"code\":503}}", "", "data: [DONE]", "");
        assertEquals(List.of("tokens 1", "UNAVAILABLE: the server sent an error: experts unavailable"), e);
    }

    @Test
    void streamCutBeforeItsEnd_isUnavailable_andNonJsonIsInternal() {
        assertEquals(List.of("tokens 1", "UNAVAILABLE: the stream ended before a finish_reason or [DONE]"),
                read(1, "data: {\"choices\":[{\"text\":\"x\",\"finish_reason\":null}]}", ""));
        List<String> e = read(1, "data: <html>oops</html>", "");
        assertEquals(1, e.size());
        assertTrue(e.getFirst().startsWith("INTERNAL: the server sent an event that is not JSON: <html>"), e.toString());
    }

    @Test
    void finishReasonWithoutDone_atTheEndOfTheBytes_hasFinished() {
        assertEquals(List.of("tokens 1", "finished 3 0 -1"),
                read(3, "data: {\"choices\":[{\"text\":\"x\",\"finish_reason\":\"length\"}]}"));
    }
}
