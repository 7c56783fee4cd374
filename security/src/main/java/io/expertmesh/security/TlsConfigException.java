package io.expertmesh.security;

/**
 * A TLS file that cannot be used: missing, unreadable, not PEM, a key that does not match its certificate.
 * An {@link IllegalArgumentException} so command lines report it as a usage error (one line, exit 2).
 */
public final class TlsConfigException extends IllegalArgumentException {
    public TlsConfigException(String message) {
        super(message);
    }

    public TlsConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
