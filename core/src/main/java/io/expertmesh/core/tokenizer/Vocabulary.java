package io.expertmesh.core.tokenizer;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.io.InputStream;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The id &lt;-&gt; token-string table of a {@code tokenizer.json}: the model vocabulary plus the added
 * tokens, with which ids are special.
 *
 * <p>The native binding encodes and decodes but cannot list its vocabulary, and serving needs it
 * (resolving {@code eos_token} to an id, vocabulary size, showing a token), so it is read here with a
 * streaming parser that skips the merges.
 */
public final class Vocabulary {
    private final String[] tokens;
    private final Map<String, Integer> ids;
    private final BitSet special;

    private Vocabulary(String[] tokens, Map<String, Integer> ids, BitSet special) {
        this.tokens = tokens;
        this.ids = ids;
        this.special = special;
    }

    /** Reads {@code model.vocab} and {@code added_tokens} from a {@code tokenizer.json} stream. */
    public static Vocabulary read(InputStream tokenizerJson) throws IOException {
        Map<String, Integer> ids = new HashMap<>(1 << 18);
        BitSet special = new BitSet();
        try (JsonParser p = new JsonFactory().createParser(tokenizerJson)) {
            expect(p.nextToken(), JsonToken.START_OBJECT);
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                p.nextToken();
                switch (field) {
                    case "model" -> readModel(p, ids);
                    case "added_tokens" -> readAddedTokens(p, ids, special);
                    default -> p.skipChildren();
                }
            }
        }
        if (ids.isEmpty()) {
            throw new IOException("tokenizer.json has no model.vocab");
        }
        int size = ids.values().stream().mapToInt(Integer::intValue).max().orElseThrow() + 1;
        String[] tokens = new String[size];
        ids.forEach((token, id) -> tokens[id] = token);
        return new Vocabulary(tokens, Map.copyOf(ids), special);
    }

    private static void readModel(JsonParser p, Map<String, Integer> ids) throws IOException {
        expect(p.currentToken(), JsonToken.START_OBJECT);
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            if (field.equals("vocab") && value == JsonToken.START_OBJECT) {
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String token = p.currentName();
                    p.nextToken();
                    ids.put(token, p.getIntValue());
                }
            } else if (field.equals("vocab")) {
                // Unigram models list [piece, score] pairs; the id is the position.
                expect(value, JsonToken.START_ARRAY);
                int id = 0;
                while (p.nextToken() == JsonToken.START_ARRAY) {
                    p.nextToken();
                    ids.put(p.getText(), id++);
                    while (p.nextToken() != JsonToken.END_ARRAY) {
                        p.skipChildren();
                    }
                }
            } else {
                p.skipChildren();
            }
        }
    }

    private static void readAddedTokens(JsonParser p, Map<String, Integer> ids, BitSet special)
            throws IOException {
        expect(p.currentToken(), JsonToken.START_ARRAY);
        while (p.nextToken() == JsonToken.START_OBJECT) {
            Integer id = null;
            String content = null;
            boolean isSpecial = false;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                p.nextToken();
                switch (field) {
                    case "id" -> id = p.getIntValue();
                    case "content" -> content = p.getText();
                    case "special" -> isSpecial = p.getBooleanValue();
                    default -> p.skipChildren();
                }
            }
            if (id == null || content == null) {
                throw new IOException("added_tokens entry without id or content");
            }
            ids.put(content, id);
            if (isSpecial) {
                special.set(id);
            }
        }
    }

    private static void expect(JsonToken actual, JsonToken expected) throws IOException {
        if (actual != expected) {
            throw new IOException("malformed tokenizer.json: expected " + expected + ", found " + actual);
        }
    }

    /** One more than the largest id, as {@code len(tokenizer)} in transformers. */
    public int size() {
        return tokens.length;
    }

    /** The raw token string of {@code id} (byte-level pieces such as {@code "Ġworld"}), or {@code null}. */
    public String token(int id) {
        return id >= 0 && id < tokens.length ? tokens[id] : null;
    }

    public OptionalInt id(String token) {
        Integer id = token == null ? null : ids.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    public boolean isSpecial(int id) {
        return id >= 0 && special.get(id);
    }

    /** The ids of the special added tokens, ascending. */
    public int[] specialIds() {
        return special.stream().toArray();
    }

    @Override
    public String toString() {
        return "Vocabulary[size=" + tokens.length + ", special=" + special.cardinality() + "]";
    }
}
