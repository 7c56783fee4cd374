package io.expertmesh.router.service;

import io.expertmesh.core.config.ModelConfig;
import io.expertmesh.core.sample.InvalidSamplingParameter;
import io.expertmesh.core.sample.SamplingParams;
import io.expertmesh.core.tokenizer.ChatMessage;
import io.expertmesh.core.tokenizer.ModelTokenizer;
import io.expertmesh.proto.inference.v1.ChatPrompt;
import io.expertmesh.proto.inference.v1.GenerateRequest;
import io.expertmesh.router.engine.EngineRequest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/**
 * Validates a {@link GenerateRequest} against the served model and turns it into an {@link EngineRequest}.
 * Every problem becomes a field violation of one INVALID_ARGUMENT status; nothing invalid reaches the engine.
 * Sizes are checked before any work that grows with them: a request id or a prompt text too long is refused
 * before it is copied into responses or tokenized.
 */
final class GenerateRequestMapper {
    /** max_tokens when the request leaves it out (cut to what the context leaves). */
    static final int DEFAULT_MAX_TOKENS = 256;
    /** Longest request_id, in UTF-8 bytes: it is repeated in every streamed message. */
    static final int MAX_REQUEST_ID_BYTES = 256;
    /** The fields of {@link io.expertmesh.proto.inference.v1.SamplingParams}, named under {@code sampling}. */
    private static final Set<String> SAMPLING_FIELDS = Set.of("temperature", "top_k", "top_p", "min_p",
            "repetition_penalty", "presence_penalty", "frequency_penalty", "seed");

    private final ModelConfig config;
    private final ModelTokenizer tokenizer;
    private final PromptTextLimit textLimit;

    GenerateRequestMapper(ModelConfig config, ModelTokenizer tokenizer) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.textLimit = new PromptTextLimit(config.maxPositions());
    }

    /** How much prompt text is worth tokenizing for this model (Tokenize applies it too). */
    PromptTextLimit textLimit() {
        return textLimit;
    }

    EngineRequest map(GenerateRequest req) {
        InvalidRequest bad = new InvalidRequest();
        int idBytes = req.getRequestIdBytes().size();
        if (idBytes > MAX_REQUEST_ID_BYTES) {
            bad.add("request_id", "request_id is " + idBytes + " bytes; at most " + MAX_REQUEST_ID_BYTES
                    + " are allowed");
        }
        int[] prompt = bad.isEmpty() ? prompt(req, bad) : new int[0]; // no work on the prompt of a refused request
        bad.throwIfAny();
        int context = config.maxPositions();
        if (prompt.length >= context) {
            throw InvalidRequest.of("prompt", "prompt has " + prompt.length + " tokens; the context holds "
                    + context + " tokens including at least one generated token");
        }
        int maxTokens;
        if (req.hasMaxTokens()) {
            maxTokens = req.getMaxTokens();
            if (maxTokens < 1) {
                bad.add("max_tokens", "must be >= 1, got " + maxTokens);
            } else if ((long) prompt.length + maxTokens > context) {
                bad.add("max_tokens", "prompt (" + prompt.length + " tokens) plus max_tokens (" + maxTokens
                        + ") exceeds the context of " + context + " tokens");
            }
        } else {
            maxTokens = Math.min(DEFAULT_MAX_TOKENS, context - prompt.length);
        }
        for (int i = 0; i < req.getStopTokenIdsCount(); i++) {
            int id = req.getStopTokenIds(i);
            if (id < 0 || id >= config.vocabSize()) {
                bad.add("stop_token_ids[" + i + "]", "token id " + id + " is outside the vocabulary [0, "
                        + config.vocabSize() + ")");
            }
        }
        bad.throwIfAny();
        SamplingParams params;
        try {
            params = sampling(req, maxTokens);
        } catch (InvalidSamplingParameter e) {
            throw InvalidRequest.of(SAMPLING_FIELDS.contains(e.field()) ? "sampling." + e.field() : e.field(),
                    e.getMessage());
        }
        SamplingBounds.check(params, bad);
        bad.throwIfAny();
        String id = req.getRequestId().isEmpty() ? UUID.randomUUID().toString() : req.getRequestId();
        return new EngineRequest(id, prompt, params, req.getLogprobs() || req.getTopLogprobs() > 0);
    }

    private int[] prompt(GenerateRequest req, InvalidRequest bad) {
        switch (req.getPromptCase()) {
            case TEXT -> {
                if (req.getTextBytes().isEmpty()) {
                    bad.add("text", "prompt text is empty");
                } else if (tokenizer == null) {
                    bad.add("text", "the model has no tokenizer; send token_ids");
                } else if (textLimit.check("text", req.getTextBytes().size(), bad)) {
                    return tokenizer.encode(req.getText());
                }
            }
            case TOKEN_IDS -> {
                List<Integer> ids = req.getTokenIds().getIdsList();
                if (ids.isEmpty()) {
                    bad.add("token_ids.ids", "prompt token ids are empty");
                }
                int[] out = new int[ids.size()];
                for (int i = 0; i < out.length; i++) {
                    out[i] = ids.get(i);
                    if (out[i] < 0 || out[i] >= config.vocabSize()) {
                        bad.add("token_ids.ids[" + i + "]", "token id " + out[i] + " is outside the vocabulary [0, "
                                + config.vocabSize() + ")");
                    }
                }
                return out;
            }
            case CHAT -> {
                return chat(req.getChat(), bad);
            }
            default -> bad.add("prompt", "one of text, token_ids or chat is required");
        }
        return new int[0];
    }

    private int[] chat(ChatPrompt chat, InvalidRequest bad) {
        if (tokenizer == null || !tokenizer.hasChatTemplate()) {
            bad.add("chat", "the model has no chat template; send text or token_ids");
            return new int[0];
        }
        if (chat.getMessagesCount() == 0) {
            bad.add("chat.messages", "no messages");
            return new int[0];
        }
        if (!textLimit.check("chat.messages", PromptTextLimit.bytesOf(chat), bad)) {
            return new int[0];
        }
        List<ChatMessage> messages = new ArrayList<>();
        for (int i = 0; i < chat.getMessagesCount(); i++) {
            var m = chat.getMessages(i);
            try {
                messages.add(new ChatMessage(m.getRole(), m.getContent()));
            } catch (IllegalArgumentException e) {
                bad.add("chat.messages[" + i + "].role", e.getMessage());
            }
        }
        if (!bad.isEmpty()) {
            return new int[0];
        }
        try {
            return tokenizer.encodeChat(messages, !chat.getOmitGenerationPrompt());
        } catch (IllegalArgumentException e) {
            bad.add("chat.messages", e.getMessage());
            return new int[0];
        }
    }

    private static SamplingParams sampling(GenerateRequest req, int maxTokens) {
        var s = req.getSampling();
        Set<Integer> stopIds = new HashSet<>(req.getStopTokenIdsList());
        return new SamplingParams(
                s.hasTemperature() ? s.getTemperature() : 1.0f,
                s.hasTopK() ? s.getTopK() : 0,
                s.hasTopP() ? s.getTopP() : 1.0f,
                s.hasMinP() ? s.getMinP() : 0f,
                s.hasRepetitionPenalty() ? s.getRepetitionPenalty() : 1f,
                s.hasPresencePenalty() ? s.getPresencePenalty() : 0f,
                s.hasFrequencyPenalty() ? s.getFrequencyPenalty() : 0f,
                s.hasSeed() ? s.getSeed() : null,
                maxTokens, stopIds, req.getStopList(), req.getIgnoreEos(), req.getTopLogprobs());
    }
}
