package io.expertmesh.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What {@code tokenizer_config.json} and {@code generation_config.json} add on top of
 * {@code tokenizer.json}: whether to add BOS/EOS, the special token strings, the chat template and
 * the extra stop ids.
 *
 * <p>The HF tokenizers library never reads these files, so these settings are applied by
 * {@link ModelTokenizer} itself.
 *
 * @param addBosToken {@code add_bos_token}; {@code null} when the file does not say, and then the
 *     post-processor in {@code tokenizer.json} decides what special tokens are added
 * @param addEosToken {@code add_eos_token}; {@code null} when the file does not say
 * @param bosToken {@code bos_token} content, or {@code null}
 * @param eosToken {@code eos_token} content, or {@code null}
 * @param chatTemplate the default chat template, or {@code null}
 * @param generationEosIds {@code eos_token_id} of {@code generation_config.json} (int or list), or empty
 */
public record TokenizerConfig(
        Boolean addBosToken,
        Boolean addEosToken,
        String bosToken,
        String eosToken,
        String chatTemplate,
        List<Integer> generationEosIds) {

    public static final String TOKENIZER_CONFIG_FILE = "tokenizer_config.json";
    public static final String GENERATION_CONFIG_FILE = "generation_config.json";
    /** Newer HF repositories keep the template in its own file. */
    public static final String CHAT_TEMPLATE_FILE = "chat_template.jinja";

    private static final ObjectMapper JSON = new ObjectMapper();

    public TokenizerConfig {
        generationEosIds = List.copyOf(generationEosIds);
    }

    /** Settings for a directory with {@code tokenizer.json} only. */
    public static TokenizerConfig empty() {
        return new TokenizerConfig(null, null, null, null, null, List.of());
    }

    /** Reads the optional config files of {@code modelDir}; missing files give defaults. */
    public static TokenizerConfig read(Path modelDir) throws IOException {
        Path configFile = modelDir.resolve(TOKENIZER_CONFIG_FILE);
        JsonNode config = Files.isRegularFile(configFile) ? readJson(configFile) : JSON.createObjectNode();
        String template = chatTemplate(config.get("chat_template"), configFile);
        Path templateFile = modelDir.resolve(CHAT_TEMPLATE_FILE);
        if (template == null && Files.isRegularFile(templateFile)) {
            template = Files.readString(templateFile);
        }
        Path generationFile = modelDir.resolve(GENERATION_CONFIG_FILE);
        List<Integer> eosIds = Files.isRegularFile(generationFile)
                ? intOrList(readJson(generationFile).get("eos_token_id"), generationFile)
                : List.of();
        return new TokenizerConfig(
                booleanOrNull(config.get("add_bos_token")),
                booleanOrNull(config.get("add_eos_token")),
                tokenContent(config.get("bos_token")),
                tokenContent(config.get("eos_token")),
                template,
                eosIds);
    }

    public Optional<String> chatTemplateIfPresent() {
        return Optional.ofNullable(chatTemplate);
    }

    private static JsonNode readJson(Path file) throws IOException {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException("cannot parse " + file + ": " + e.getMessage(), e);
        }
    }

    private static Boolean booleanOrNull(JsonNode node) {
        return node == null || node.isNull() ? null : node.asBoolean();
    }

    /** A special token is written either as a plain string or as an AddedToken object with {@code content}. */
    private static String tokenContent(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        JsonNode content = node.get("content");
        return content == null || content.isNull() ? null : content.asText();
    }

    /** {@code chat_template} is a string, or a list of {@code {name, template}} of which "default" is used. */
    private static String chatTemplate(JsonNode node, Path file) throws IOException {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.isArray()) {
            for (JsonNode named : node) {
                if ("default".equals(named.path("name").asText())) {
                    return named.path("template").asText();
                }
            }
            return null;
        }
        throw new IOException(file + ": chat_template must be a string or a list of named templates");
    }

    private static List<Integer> intOrList(JsonNode node, Path file) throws IOException {
        List<Integer> ids = new ArrayList<>();
        if (node == null || node.isNull()) {
            return ids;
        }
        if (node.isInt()) {
            ids.add(node.asInt());
        } else if (node.isArray()) {
            for (JsonNode id : node) {
                if (!id.isInt()) {
                    throw new IOException(file + ": eos_token_id list holds a non-integer: " + id);
                }
                ids.add(id.asInt());
            }
        } else {
            throw new IOException(file + ": eos_token_id must be an integer or a list, got " + node);
        }
        return ids;
    }
}
