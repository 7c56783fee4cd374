package io.expertmesh.security;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * A bearer token held by a client. The value is only ever read to build an authorization header (by
 * {@link BearerTokenCredentials} for gRPC, by {@link #authorizationHeader()} for HTTP); {@link #toString()} masks it,
 * so configurations that carry one can be logged.
 */
public final class BearerToken {
    /** RFC 6750 b64token: what may follow "Bearer " in an authorization header. */
    static final Pattern SYNTAX = Pattern.compile("[A-Za-z0-9\\-._~+/]+=*");
    /** Shortest token accepted: 16 characters; {@code openssl rand -hex 32} gives 64. */
    static final int MIN_LENGTH = 16;

    private final String value;

    private BearerToken(String value) {
        this.value = value;
    }

    /** A token from its text (surrounding whitespace removed), checked like the tokens of a router's token file. */
    public static BearerToken of(String token) {
        if (token == null) {
            throw new IllegalArgumentException("the bearer token is empty");
        }
        String t = token.strip();
        String problem = problem(t);
        if (problem != null) {
            throw new IllegalArgumentException("the bearer token " + problem);
        }
        return new BearerToken(t);
    }

    /** The token in {@code file}: its first line that is neither blank nor a {@code #} comment. */
    public static BearerToken fromFile(Path file) {
        try {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                String t = line.strip();
                if (!t.isEmpty() && !t.startsWith("#")) {
                    String problem = problem(t);
                    if (problem != null) {
                        throw new IllegalArgumentException("token file " + file + ": the token " + problem);
                    }
                    return new BearerToken(t);
                }
            }
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("token file " + file + ": file not found");
        } catch (IOException e) {
            throw new IllegalArgumentException("token file " + file + ": cannot be read: " + e.getMessage());
        }
        throw new IllegalArgumentException("token file " + file + ": no token in it");
    }

    /** What is wrong with a token (never quoting it), or {@code null}. */
    static String problem(String t) {
        if (t.isEmpty()) {
            return "is empty";
        }
        if (!SYNTAX.matcher(t).matches()) {
            return "has characters outside A-Z a-z 0-9 - . _ ~ + / (and = at the end)";
        }
        if (t.length() < MIN_LENGTH) {
            return "is " + t.length() + " characters long; use at least " + MIN_LENGTH
                    + " (e.g. 'openssl rand -hex 32')";
        }
        return null;
    }

    /** The secret itself; for the authorization header only. */
    String value() {
        return value;
    }

    /**
     * The value of an HTTP {@code Authorization} header carrying this token. Send it only over TLS or to a loopback
     * address ({@link BearerTokenCredentials#isLoopback}), as the gRPC credentials do.
     */
    public String authorizationHeader() {
        return "Bearer " + value;
    }

    @Override
    public String toString() {
        return "BearerToken[****]";
    }
}
