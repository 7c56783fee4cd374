package io.expertmesh.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BearerTokensTest {
    static final String A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    static final String B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    @TempDir
    Path dir;

    static String error(List<String> lines) {
        return assertThrows(IllegalArgumentException.class, () -> BearerTokens.parse(lines, "tokens.txt"))
                .getMessage();
    }

    @Test
    void parse_commentsBlankLinesAndScopes_givesEachTokenItsScopes() {
        BearerTokens t = BearerTokens.parse(List.of("# comment", "", "  " + A + "\tgenerate  ", B + " admin,generate"),
                "f");
        assertEquals(2, t.size());
        assertEquals(Optional.of(Set.of(Scope.GENERATE)), t.scopesOf(A));
        assertEquals(Optional.of(Set.of(Scope.GENERATE, Scope.ADMIN)), t.scopesOf(B));
        assertEquals(Optional.empty(), t.scopesOf(A + "x"));
        assertEquals(Optional.empty(), t.scopesOf(""));
    }

    @Test
    void parse_badLines_sayWhichLineAndWhatWithoutQuotingTheToken() {
        String m = error(List.of("#", A + " generat"));
        assertTrue(m.contains("line 2") && m.contains("unknown scope 'generat'"), m);
        assertFalse(m.contains(A), m);
        m = error(List.of(A));
        assertTrue(m.contains("line 1") && m.contains("TOKEN SCOPE"), m);
        m = error(List.of("short generate"));
        assertTrue(m.contains("at least 16"), m);
        assertFalse(m.contains("short"), m);
        m = error(List.of(A + " generate", A + " admin"));
        assertTrue(m.contains("line 2") && m.contains("twice"), m);
        m = error(List.of("tok\"en-with-a-quote-in-it generate"));
        assertTrue(m.contains("characters outside"), m);
        m = error(List.of("# nothing"));
        assertTrue(m.contains("no token"), m);
    }

    @Test
    void load_missingFile_isAClearError() {
        String m = assertThrows(IllegalArgumentException.class, () -> BearerTokens.load(dir.resolve("nope")))
                .getMessage();
        assertTrue(m.contains("nope") && m.contains("not found"), m);
    }

    @Test
    void toString_neverShowsATokenAnywhere() throws Exception {
        Path f = dir.resolve("tokens");
        Files.write(f, List.of(A + " generate"));
        BearerTokens tokens = BearerTokens.load(f);
        assertFalse(tokens.toString().contains(A), tokens.toString());
        assertTrue(tokens.toString().contains("1 token"), tokens.toString());
        BearerToken client = BearerToken.of(A);
        assertFalse(client.toString().contains(A));
        assertFalse(new BearerTokenCredentials(client).toString().contains(A));
        TestCa ca = TestCa.create(dir, "ca");
        TestCa.Issued cert = ca.server("s");
        ServerSecurity s = new ServerSecurity(TlsFiles.server(cert.cert(), cert.key()), tokens, null);
        assertFalse(s.toString().contains(A), s.toString());
    }

    @Test
    void clientToken_fromFileOrText_isCheckedAndTrimmed() throws Exception {
        Path f = dir.resolve("token");
        Files.write(f, List.of("# my token", "  " + A + "  "));
        assertEquals(A, BearerToken.fromFile(f).value());
        assertEquals(A, BearerToken.of(" " + A + "\n").value());
        assertThrows(IllegalArgumentException.class, () -> BearerToken.of("has space in the middle of it"));
        Files.write(f, List.of("# empty"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> BearerToken.fromFile(f)).getMessage()
                .contains("no token"));
    }

    @Test
    void methodScopes_healthAndReflectionOpen_unnamedServicesNeedAdmin() {
        MethodScopes s = MethodScopes.builder().service("x.Inference", Scope.GENERATE).build();
        assertEquals(Optional.empty(), s.required("grpc.health.v1.Health/Check"));
        assertEquals(Optional.empty(), s.required("grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
        assertEquals(Optional.of(Scope.GENERATE), s.required("x.Inference/Generate"));
        assertEquals(Optional.of(Scope.ADMIN), s.required("x.Cluster/Drain"));
    }
}
