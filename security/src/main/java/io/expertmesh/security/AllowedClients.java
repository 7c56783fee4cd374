package io.expertmesh.security;

import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Which client certificates a mutual-TLS server lets in, beyond being signed by its client CA: any of them
 * ({@link #anySignedByClientCa()}), or only those whose CN or a subject alternative name is in a list (compared
 * ignoring case, as DNS names are). Pure: no I/O.
 */
public final class AllowedClients {
    private final Set<String> names; // lower case; null = any certificate the client CA signed

    private AllowedClients(Set<String> names) {
        this.names = names;
    }

    /** Every certificate the client CA signed: right when that CA signs routers only. */
    public static AllowedClients anySignedByClientCa() {
        return new AllowedClients(null);
    }

    /** Only certificates with one of these names as CN or SAN. */
    public static AllowedClients named(List<String> names) {
        if (names == null || names.isEmpty() || names.stream().anyMatch(n -> n == null || n.isBlank())) {
            throw new IllegalArgumentException("the allowed client names must be a non-empty list of CN/SAN values");
        }
        return new AllowedClients(names.stream().map(n -> n.strip().toLowerCase(Locale.ROOT))
                .collect(Collectors.toUnmodifiableSet()));
    }

    /** A comma-separated list ({@code router,router-2.example.com}); blank = any signed by the client CA. */
    public static AllowedClients parse(String commaSeparated) {
        if (commaSeparated == null || commaSeparated.isBlank()) {
            return anySignedByClientCa();
        }
        return named(Arrays.asList(commaSeparated.split(",")));
    }

    public boolean isAny() {
        return names == null;
    }

    /** Whether the (already CA-verified) leaf certificate {@code cert} may call. */
    public boolean permits(X509Certificate cert) {
        if (names == null) {
            return true;
        }
        return CertificateIdentity.names(cert).stream().anyMatch(n -> names.contains(n.toLowerCase(Locale.ROOT)));
    }

    @Override
    public String toString() {
        return names == null ? "any certificate signed by the client CA"
                : "CN/SAN in " + names.stream().sorted().toList();
    }
}
