package io.expertmesh.client;

import io.expertmesh.proto.inference.v1.ChatMessage;
import io.expertmesh.proto.inference.v1.ChatPrompt;
import io.expertmesh.proto.inference.v1.DetokenizeRequest;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.SamplingParams;
import io.expertmesh.proto.inference.v1.TokenIds;
import io.expertmesh.proto.inference.v1.TokenizeRequest;
import java.util.Arrays;

/**
 * Short ways to build requests, e.g.
 * {@code client.generate(Requests.text("The capital of France is").setMaxTokens(8).build())}.
 * The generate helpers return builders so the caller can add fields.
 */
public final class Requests {
    private Requests() {
    }

    /** A generation from prompt text (BOS added as the model's tokenizer config says). */
    public static GenerateRequest.Builder text(String prompt) {
        return GenerateRequest.newBuilder().setText(prompt);
    }

    /** A generation from prompt token ids. */
    public static GenerateRequest.Builder tokenIds(int... ids) {
        TokenIds.Builder b = TokenIds.newBuilder();
        Arrays.stream(ids).forEach(b::addIds);
        return GenerateRequest.newBuilder().setTokenIds(b);
    }

    /** A generation from one user message, rendered with the model's chat template. */
    public static GenerateRequest.Builder chat(String user) {
        return chat(null, user);
    }

    /** A generation from a system message (none when {@code null}) and a user message. */
    public static GenerateRequest.Builder chat(String system, String user) {
        return GenerateRequest.newBuilder().setChat(chatPrompt(system, user));
    }

    /** A chat prompt of a system message (none when {@code null}) and a user message. */
    public static ChatPrompt chatPrompt(String system, String user) {
        ChatPrompt.Builder b = ChatPrompt.newBuilder();
        if (system != null) {
            b.addMessages(message("system", system));
        }
        return b.addMessages(message("user", user)).build();
    }

    /** A chat message. */
    public static ChatMessage message(String role, String content) {
        return ChatMessage.newBuilder().setRole(role).setContent(content).build();
    }

    /** Greedy decoding (temperature 0). */
    public static SamplingParams greedy() {
        return SamplingParams.newBuilder().setTemperature(0f).build();
    }

    /** Tokenize text, adding BOS as the tokenizer config says. */
    public static TokenizeRequest tokenize(String text) {
        return TokenizeRequest.newBuilder().setText(text).setAddSpecialTokens(true).build();
    }

    /** Detokenize ids, keeping special tokens. */
    public static DetokenizeRequest detokenize(int... ids) {
        DetokenizeRequest.Builder b = DetokenizeRequest.newBuilder();
        Arrays.stream(ids).forEach(b::addIds);
        return b.build();
    }
}
