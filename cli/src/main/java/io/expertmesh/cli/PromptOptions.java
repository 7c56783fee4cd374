package io.expertmesh.cli;

import io.expertmesh.client.Requests;
import io.expertmesh.core.tokenizer.ChatMessage;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.proto.inference.v1.TokenIds;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** Exactly one of --prompt, --prompt-ids, --chat: what the model is asked. */
final class PromptOptions {
    @Option(names = "--prompt", paramLabel = "TEXT", description = "Prompt text (BOS added per the tokenizer).")
    String prompt;

    @Option(names = "--prompt-ids", paramLabel = "IDS", split = ",",
            description = "Prompt as comma-separated token ids, e.g. 0,818,726 (works without a tokenizer).")
    int[] promptIds;

    @Option(names = "--chat", paramLabel = "TEXT",
            description = "A user message, rendered with the model's chat template.")
    String chat;

    @Option(names = "--system", paramLabel = "TEXT", description = "System message for --chat.")
    String system;

    /**
     * The checks that need no model: exactly one prompt form, not empty. {@code run} calls it before loading the
     * model, so a missing prompt is said at once instead of after the load.
     */
    void validate() {
        requireExactlyOne();
        if (prompt != null && prompt.isEmpty()) {
            throw new IllegalArgumentException("--prompt is empty");
        }
        if (promptIds != null && promptIds.length == 0) {
            throw new IllegalArgumentException("--prompt-ids is empty");
        }
    }

    /** The prompt's token ids; the message says what is wrong when they cannot be made. */
    int[] tokens(ModelTokenizer tokenizer) {
        validate();
        if (promptIds != null) {
            return promptIds;
        }
        if (tokenizer == null) {
            throw new IllegalArgumentException("the model directory has no tokenizer.json; use --prompt-ids");
        }
        if (prompt != null) {
            return tokenizer.encode(prompt);
        }
        List<ChatMessage> messages = new ArrayList<>();
        if (system != null) {
            messages.add(ChatMessage.system(system));
        }
        messages.add(ChatMessage.user(chat));
        return tokenizer.encodeChat(messages, true);
    }

    /** Sets the prompt of a gRPC request: text, token ids, or a chat (the router tokenizes). */
    GenerateRequest.Builder applyTo(GenerateRequest.Builder request) {
        validate();
        if (promptIds != null) {
            TokenIds.Builder ids = TokenIds.newBuilder();
            for (int id : promptIds) {
                ids.addIds(id);
            }
            return request.setTokenIds(ids);
        }
        if (prompt != null) {
            return request.setText(prompt);
        }
        return request.setChat(Requests.chatPrompt(system, chat));
    }

    private void requireExactlyOne() {
        int given = (prompt != null ? 1 : 0) + (promptIds != null ? 1 : 0) + (chat != null ? 1 : 0);
        if (given != 1) {
            throw new IllegalArgumentException("give exactly one of --prompt, --prompt-ids, --chat");
        }
    }
}
