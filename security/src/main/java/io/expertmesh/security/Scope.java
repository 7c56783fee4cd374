package io.expertmesh.security;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** What a bearer token may do; a method needs one scope (see {@link MethodScopes}). */
public enum Scope {
    /** The public inference API: Generate, Tokenize, Detokenize, GetModelInfo, GetStatus. */
    GENERATE,
    /** Administration and cluster calls: any service that is neither open nor given another scope. */
    ADMIN;

    /** The name in token files: lower case. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The scope named {@code name} in a token file; a clear error listing the known ones otherwise. */
    public static Scope parse(String name) {
        for (Scope s : values()) {
            if (s.wireName().equals(name)) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown scope '" + name + "' (known: " + known() + ")");
    }

    static String known() {
        return Arrays.stream(values()).map(Scope::wireName).collect(Collectors.joining(", "));
    }
}
