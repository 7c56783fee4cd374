/**
 * Security of the gRPC links: TLS and mutual-TLS credentials from PEM files ({@link TlsFiles},
 * {@link TlsCredentials}), bearer-token auth on the public API ({@link BearerTokens},
 * {@link BearerTokenInterceptor}, {@link BearerTokenCredentials}), and the check that only allowed client
 * certificates reach the worker API ({@link ClientCertificateInterceptor}). Depends on grpc-api only, so the
 * services keep choosing their transport.
 */
package io.expertmesh.security;
