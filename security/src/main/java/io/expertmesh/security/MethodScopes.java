package io.expertmesh.security;

import io.grpc.MethodDescriptor;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Which scope each gRPC method needs. A service is either open (no token: health checks, reflection), mapped to
 * a scope, or, when not named at all, needs {@link #otherwise()}: a service added later is closed until someone
 * decides who may call it.
 */
public final class MethodScopes {
    /** grpc's health service: load balancers and orchestrators probe it without credentials. */
    public static final String HEALTH = "grpc.health.v1.Health";
    /** Server reflection (v1 and v1alpha): describes the API, holds no data. */
    public static final Set<String> REFLECTION = Set.of("grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection");

    private final Set<String> open;
    private final Map<String, Scope> byService;
    private final Scope otherwise;

    private MethodScopes(Set<String> open, Map<String, Scope> byService, Scope otherwise) {
        this.open = Set.copyOf(open);
        this.byService = Map.copyOf(byService);
        this.otherwise = otherwise;
    }

    /** Health and reflection open, everything else {@link Scope#ADMIN}; add services with the builder. */
    public static Builder builder() {
        Builder b = new Builder().open(HEALTH);
        REFLECTION.forEach(b::open);
        return b;
    }

    /** The scope {@code fullMethodName} ({@code package.Service/Method}) needs; empty when it is open. */
    public Optional<Scope> required(String fullMethodName) {
        String service = MethodDescriptor.extractFullServiceName(fullMethodName);
        if (service != null && open.contains(service)) {
            return Optional.empty();
        }
        return Optional.of(byService.getOrDefault(service, otherwise));
    }

    /** The scope of services not named. */
    public Scope otherwise() {
        return otherwise;
    }

    /** Builds a {@link MethodScopes}. */
    public static final class Builder {
        private final Set<String> open = new HashSet<>();
        private final Map<String, Scope> byService = new HashMap<>();
        private Scope otherwise = Scope.ADMIN;

        /** Calls to {@code service} need no token. */
        public Builder open(String service) {
            open.add(service);
            return this;
        }

        /** Calls to {@code service} need {@code scope}. */
        public Builder service(String service, Scope scope) {
            byService.put(service, scope);
            return this;
        }

        /** The scope of services not named ({@link Scope#ADMIN} unless set). */
        public Builder otherwise(Scope scope) {
            this.otherwise = scope;
            return this;
        }

        public MethodScopes build() {
            return new MethodScopes(open, byService, otherwise);
        }
    }
}
