package io.expertmesh.client;

import java.util.Objects;

/**
 * One router of a several-router target: {@code HOST:PORT} or {@code [IPV6]:PORT}. A list of routers is resolved by
 * this client ({@link StaticRoutersNameResolver}), not by a gRPC URI scheme, so each must name its port.
 *
 * @param host a name, an IPv4 literal, or an IPv6 literal without brackets
 * @param port 1 to 65535
 */
record RouterAddress(String host, int port) {

    RouterAddress {
        Objects.requireNonNull(host, "host");
        if (host.isEmpty()) {
            throw new IllegalArgumentException("empty host");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port " + port + " is outside 1..65535");
        }
    }

    /** Parses {@code HOST:PORT} or {@code [IPV6]:PORT}; the message names the bad text and the expected form. */
    static RouterAddress parse(String text) {
        String t = text.strip();
        String host;
        String port;
        if (t.startsWith("[")) {
            int close = t.indexOf(']');
            if (close < 0 || close + 1 >= t.length() || t.charAt(close + 1) != ':') {
                throw bad(text, "expected [IPV6]:PORT");
            }
            host = t.substring(1, close);
            port = t.substring(close + 2);
        } else {
            int colon = t.lastIndexOf(':');
            if (t.contains("/") || colon < 0 || colon != t.indexOf(':')) {
                // a URI (dns:///...) or a bare IPv6 literal: neither can be told apart from host:port in a list
                throw bad(text, "expected HOST:PORT (several routers are given as HOST:PORT each; "
                        + "a URI target such as dns:///NAME:PORT must be given alone)");
            }
            host = t.substring(0, colon);
            port = t.substring(colon + 1);
        }
        if (host.isEmpty()) {
            throw bad(text, "the host is empty");
        }
        if (!port.matches("[0-9]{1,5}")) {
            throw bad(text, "the port must be a number");
        }
        int p = Integer.parseInt(port);
        if (p < 1 || p > 65535) {
            throw bad(text, "the port must be in 1..65535");
        }
        return new RouterAddress(host, p);
    }

    /** {@code host:port}, the IPv6 literal in brackets: the authority TLS verifies the router's certificate against. */
    String authority() {
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }

    @Override
    public String toString() {
        return authority();
    }

    private static IllegalArgumentException bad(String text, String why) {
        return new IllegalArgumentException("bad router address '" + text + "': " + why);
    }
}
