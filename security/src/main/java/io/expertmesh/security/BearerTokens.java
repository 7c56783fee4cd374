package io.expertmesh.security;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The bearer tokens a router accepts and the scopes of each, from a token file: one token per line,
 * {@code TOKEN SCOPE[,SCOPE...]}, blank lines and {@code #} comments ignored, e.g.
 * <pre>
 * # team A's batch jobs
 * 3f9c0e...  generate
 * 8a1d44...  generate,admin
 * </pre>
 * Only SHA-256 digests of the tokens are kept, and a presented token is compared with every one of them with
 * {@link MessageDigest#isEqual} (constant time), so neither the comparison's timing nor a heap dump gives a token
 * away. {@link #toString()} says how many tokens and from where, never what they are.
 */
public final class BearerTokens {
    private record Entry(byte[] digest, Set<Scope> scopes) {
    }

    private final List<Entry> entries;
    private final String source;

    private BearerTokens(List<Entry> entries, String source) {
        this.entries = List.copyOf(entries);
        this.source = source;
    }

    /** The tokens of {@code file}; a clear error (file and line, never the token) when it is malformed. */
    public static BearerTokens load(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("auth token file " + file + ": file not found");
        } catch (IOException e) {
            throw new IllegalArgumentException("auth token file " + file + ": cannot be read: " + e.getMessage());
        }
        return parse(lines, file.toString());
    }

    /** The tokens of a token file's lines; {@code source} names the file in errors. */
    public static BearerTokens parse(List<String> lines, String source) {
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String where = "auth token file " + source + " line " + (i + 1) + ": ";
            String[] fields = line.split("\\s+");
            if (fields.length != 2) {
                throw new IllegalArgumentException(where + "expected 'TOKEN SCOPE[,SCOPE...]', got "
                        + fields.length + " fields");
            }
            String problem = BearerToken.problem(fields[0]);
            if (problem != null) {
                throw new IllegalArgumentException(where + "the token " + problem);
            }
            Set<Scope> scopes = EnumSet.noneOf(Scope.class);
            for (String s : fields[1].split(",")) {
                try {
                    scopes.add(Scope.parse(s.strip()));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(where + e.getMessage());
                }
            }
            byte[] digest = sha256(fields[0]);
            for (Entry e : entries) {
                if (MessageDigest.isEqual(e.digest(), digest)) {
                    throw new IllegalArgumentException(where + "the same token is listed twice");
                }
            }
            entries.add(new Entry(digest, Collections.unmodifiableSet(scopes)));
        }
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("auth token file " + source + ": no token in it");
        }
        return new BearerTokens(entries, source);
    }

    /** The scopes of {@code presented}, or empty when it is not one of the tokens. */
    public Optional<Set<Scope>> scopesOf(String presented) {
        byte[] digest = sha256(presented);
        Entry match = null;
        for (Entry e : entries) {
            // every entry is compared, whatever matched before: the time taken does not say which one matched
            if (MessageDigest.isEqual(e.digest(), digest)) {
                match = e;
            }
        }
        return match == null ? Optional.empty() : Optional.of(match.scopes());
    }

    public int size() {
        return entries.size();
    }

    @Override
    public String toString() {
        return "BearerTokens[" + entries.size() + " token(s) from " + source + "]";
    }

    static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
