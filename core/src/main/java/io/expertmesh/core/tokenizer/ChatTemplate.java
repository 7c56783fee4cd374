package io.expertmesh.core.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face chat template ({@code chat_template} in {@code tokenizer_config.json}) rendered with
 * Jinjava, configured to behave like the sandboxed Jinja2 environment that {@code transformers} uses
 * ({@code trim_blocks}, {@code lstrip_blocks}, loop controls, {@code namespace}, {@code raise_exception}).
 *
 * <p>The prompt a model was trained on is defined by this template, not by us: rendering it (rather
 * than hand-writing the DeepSeek format) keeps us right for every model that ships one.
 */
public final class ChatTemplate {
    private static final Logger log = LoggerFactory.getLogger(ChatTemplate.class);

    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    public ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = Objects.requireNonNull(source, "source");
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withFailOnUnknownTokens(false)
                // Message content is data: never render "{{ ... }}" found inside it.
                .withNestedInterpretationEnabled(false)
                // Not withUseNaturalOperatorPrecedence: it parses "not x is defined" as
                // "(not x) is defined", which the DeepSeek-V3 template relies on being Jinja2's reading.
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withParseWhitespaceControlStrictly(true)
                        .withKeepNullableLoopValues(true)
                        .build())
                .build();
        this.jinjava = new Jinjava(config);
        jinjava.registerFunction(new ELFunctionDefinition(
                "", "raise_exception", ChatTemplate.class, "raiseException", String.class));
    }

    /**
     * Renders {@code messages} into a prompt string.
     *
     * @param addGenerationPrompt append the tokens that open an assistant turn, so the model answers
     * @throws IllegalArgumentException when the list is empty or the template rejects the conversation
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        if (messages == null || messages.isEmpty()) {
            throw new IllegalArgumentException("a chat needs at least one message");
        }
        List<Map<String, Object>> plain = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            if (m == null) {
                throw new IllegalArgumentException("chat message " + i + " is null");
            }
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            plain.add(map);
        }
        Map<String, Object> context = new HashMap<>();
        context.put("messages", plain);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("bos_token", bosToken);
        context.put("eos_token", eosToken);
        RenderResult result = jinjava.renderForResult(source, context);
        List<TemplateError> fatal = result.getErrors().stream()
                .filter(e -> e.getSeverity() == TemplateError.ErrorType.FATAL)
                .toList();
        if (!fatal.isEmpty()) {
            TemplateError first = fatal.getFirst();
            TemplateRejection rejection = rejection(first.getException());
            if (rejection != null) {
                throw new IllegalArgumentException("chat template rejected the conversation: " + rejection.getMessage());
            }
            throw new IllegalArgumentException("chat template failed to render at line " + first.getLineno()
                    + ": " + first.getMessage(), first.getException());
        }
        if (result.hasErrors()) {
            log.debug("chat template rendered with warnings: {}", result.getErrors());
        }
        return result.getOutput();
    }

    /** {@code raise_exception(msg)} as transformers defines it: templates call it to reject a conversation. */
    public static String raiseException(String message) {
        throw new TemplateRejection(message);
    }

    private static TemplateRejection rejection(Throwable error) {
        for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof TemplateRejection r) {
                return r;
            }
        }
        return null;
    }

    /** Thrown by {@code raise_exception}; Jinjava wraps it, {@link #render} unwraps its message. */
    static final class TemplateRejection extends RuntimeException {
        TemplateRejection(String message) {
            super(message, null, false, false);
        }
    }
}
