package io.expertmesh.core.tokenizer;

import java.util.Set;

/**
 * One turn of a chat conversation, as chat templates see it ({@code message['role']},
 * {@code message['content']}).
 *
 * <p>Validated on construction so that a malformed request fails with a clear message at the edge
 * instead of rendering a silently wrong prompt: templates such as DeepSeek-V3's simply drop messages
 * whose role they do not know.
 */
public record ChatMessage(String role, String content) {

    /** The roles every supported chat template understands. */
    public static final Set<String> ROLES = Set.of("system", "user", "assistant", "tool");

    public ChatMessage {
        if (role == null) {
            throw new IllegalArgumentException("chat message role must not be null; expected one of " + ROLES);
        }
        if (!ROLES.contains(role)) {
            throw new IllegalArgumentException(
                    "unknown chat message role '" + role + "'; expected one of " + ROLES);
        }
        if (content == null) {
            throw new IllegalArgumentException("chat message content must not be null (role '" + role + "')");
        }
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    public static ChatMessage tool(String content) {
        return new ChatMessage("tool", content);
    }
}
