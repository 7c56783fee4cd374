package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.expertmesh.router.RouterConfig;
import io.expertmesh.router.RouterServer;
import io.expertmesh.router.engine.EngineConfig;
import io.expertmesh.security.BearerTokens;
import io.expertmesh.security.ServerSecurity;
import io.expertmesh.security.TestCa;
import io.expertmesh.security.TlsFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;

/** {@code generate} and {@code bench} over TLS with bearer tokens; {@code serve}'s security flags; no token in logs. */
class SecureCommandsTest {
    static final String TOKEN = "cli-test-token-0123456789abcdef0123";
    static final String ADMIN_TOKEN = "cli-admin-token-0123456789abcdef012";

    @TempDir
    static Path dir;
    static TestCa ca;
    static TestCa.Issued cert;
    static Path serverTokens;
    static Path clientToken;
    static Path adminToken;
    static FakeRouter router;

    @BeforeAll
    static void start() throws Exception {
        ca = TestCa.create(dir, "cluster");
        cert = ca.server("router");
        serverTokens = Files.write(dir.resolve("tokens"), List.of("# tokens", TOKEN + " generate",
                ADMIN_TOKEN + " admin"));
        clientToken = Files.write(dir.resolve("my-token"), List.of(TOKEN));
        adminToken = Files.write(dir.resolve("admin-token"), List.of(ADMIN_TOKEN));
        router = FakeRouter.onSocket(new FakeInferenceService(), new ServerSecurity(
                TlsFiles.server(cert.cert(), cert.key()), BearerTokens.load(serverTokens), null));
    }

    @AfterAll
    static void stop() throws Exception {
        router.close();
    }

    static RunCommandTest.Run generate(CommandLine cl, String... extra) {
        List<String> args = new ArrayList<>(List.of("generate", "--target", router.target(), "--prompt-ids", "1,2",
                "--max-tokens", "3"));
        args.addAll(List.of(extra));
        return RunCommandTest.run(cl, args.toArray(String[]::new));
    }

    /** A command line whose generate sees {@code env} as its environment. */
    static CommandLine withEnv(java.util.Map<String, String> env) {
        CommandLine.IFactory defaults = CommandLine.defaultFactory();
        return Main.commandLine(new CommandLine.IFactory() {
            @Override
            @SuppressWarnings("unchecked")
            public <K> K create(Class<K> cls) throws Exception {
                K made = defaults.create(cls);
                if (made instanceof GenerateCommand g) {
                    g.security.env = env::get;
                } else if (made instanceof BenchCommand b) {
                    b.security.env = env::get;
                }
                return made;
            }
        });
    }

    @Test
    void generate_tlsCaAndTokenFile_succeeds() {
        RunCommandTest.Run r = generate(withEnv(java.util.Map.of()), "--tls-ca", ca.certFile().toString(),
                "--token-file", clientToken.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals(3, r.out().strip().split(" ").length, r.out());
    }

    @Test
    void generate_tokenFromEnvironment_succeeds() {
        RunCommandTest.Run r = generate(withEnv(java.util.Map.of("EXPERTMESH_TOKEN", TOKEN)), "--tls-ca",
                ca.certFile().toString());
        assertEquals(0, r.exit(), r.err());
    }

    @Test
    void generate_withoutToken_exits2Unauthenticated() {
        RunCommandTest.Run r = generate(withEnv(java.util.Map.of()), "--tls-ca", ca.certFile().toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("UNAUTHENTICATED"), r.err());
    }

    @Test
    void generate_tokenWithoutGenerateScope_exits2PermissionDenied() {
        RunCommandTest.Run r = generate(withEnv(java.util.Map.of()), "--tls-ca", ca.certFile().toString(),
                "--token-file", adminToken.toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("PERMISSION_DENIED"), r.err());
    }

    @Test
    void generate_plaintextToTlsRouter_exits3() {
        RunCommandTest.Run r = generate(withEnv(java.util.Map.of()), "--token-file", clientToken.toString());
        assertEquals(3, r.exit(), r.err());
    }

    @Test
    void generate_missingCaFile_exits2WithTheFile() {
        RunCommandTest.Run r = generate(withEnv(java.util.Map.of()), "--tls-ca", dir.resolve("nope.pem").toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("nope.pem") && r.err().contains("not found"), r.err());
    }

    @Test
    void bench_tlsAndToken_runs() {
        RunCommandTest.Run r = RunCommandTest.run(withEnv(java.util.Map.of("EXPERTMESH_TOKEN", TOKEN)), "bench",
                "--target", router.target(), "--tls-ca", ca.certFile().toString(), "--num-requests", "2",
                "--max-concurrency", "1", "--input-len", "fixed:4", "--output-len", "fixed:2");
        assertEquals(0, r.exit(), r.err());
    }

    @Test
    void serveFlags_andLogs_neverShowTheToken() throws Exception {
        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        Logger ours = (Logger) LoggerFactory.getLogger("io.expertmesh");
        Level before = ours.getLevel();
        ListAppender<ILoggingEvent> logs = new ListAppender<>();
        logs.start();
        root.addAppender(logs);
        ours.setLevel(Level.DEBUG); // the client logs its config at DEBUG
        try {
            ServeCommand serve = new ServeCommand();
            new CommandLine(serve).parseArgs("--tls-cert", cert.cert().toString(), "--tls-key", cert.key().toString(),
                    "--auth-tokens", serverTokens.toString());
            ServerSecurity security = serve.serverSecurity();
            assertTrue(security.toString().contains(serverTokens.toString()), security.toString());
            RouterConfig config = new RouterConfig(0, RunCommandTest.FIXTURE, new EngineConfig(16, 1L << 20, 64, 4, 4,
                    true), 64, Duration.ofSeconds(1));
            new RouterServer(config, security).close(); // logs its security at construction
            assertEquals(0, generate(withEnv(java.util.Map.of()), "--tls-ca", ca.certFile().toString(),
                    "--token-file", clientToken.toString()).exit());
        } finally {
            root.detachAppender(logs);
            ours.setLevel(before);
        }
        List<String> lines = logs.list.stream().map(e -> e.getFormattedMessage()
                + (e.getThrowableProxy() == null ? "" : e.getThrowableProxy().getMessage())).toList();
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("Router security: TLS")), lines.toString());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("ExpertMesh client for")), lines.toString());
        for (String l : lines) {
            assertFalse(l.contains(TOKEN) || l.contains(ADMIN_TOKEN), l);
        }
    }

    @Test
    void serve_workerTlsFlags_makeMutualTlsChannels() {
        ServeCommand serve = new ServeCommand();
        TestCa.Issued router = ca.client("router");
        new CommandLine(serve).parseArgs("--worker-tls-ca", ca.certFile().toString(), "--worker-tls-cert",
                router.cert().toString(), "--worker-tls-key", router.key().toString());
        assertEquals(TlsFiles.client(ca.certFile(), router.cert(), router.key()), serve.workerTls.files());
        assertTrue(serve.workerTls.channels().credentials() instanceof io.grpc.TlsChannelCredentials);
        ServeCommand plain = new ServeCommand();
        new CommandLine(plain).parseArgs();
        assertTrue(plain.workerTls.channels().credentials() instanceof io.grpc.InsecureChannelCredentials);
    }

    @Test
    void serve_inconsistentTlsFlags_exit2WithTheFlag() {
        RunCommandTest.Run r = RunCommandTest.run("serve", "--model", RunCommandTest.FIXTURE.toString(), "--port",
                "0", "--kv-store", "none", "--tls-client-ca", ca.certFile().toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--tls-client-ca needs --tls-cert and --tls-key"), r.err());
        r = RunCommandTest.run("serve", "--model", RunCommandTest.FIXTURE.toString(), "--port", "0", "--kv-store",
                "none", "--worker-tls-cert", cert.cert().toString(), "--worker-tls-key", cert.key().toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--worker-tls-ca"), r.err());
        TestCa.Issued other = ca.client("other");
        r = RunCommandTest.run("serve", "--model", RunCommandTest.FIXTURE.toString(), "--port", "0", "--kv-store",
                "none", "--tls-cert", cert.cert().toString(), "--tls-key", other.key().toString());
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("does not belong"), r.err());
    }

    @Test
    void worker_allowedClientsWithoutMutualTls_exits2() {
        RunCommandTest.Run r = RunCommandTest.run("worker", "--model", RunCommandTest.FIXTURE.toString(), "--port",
                "0", "--allowed-clients", "router");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--allowed-clients needs mutual TLS"), r.err());
    }

    @Test
    void adminAndRegistration_sendTlsAndToken_toARealRouter() throws Exception {
        RouterConfig config = new RouterConfig(0, RunCommandTest.FIXTURE, new EngineConfig(16, 1L << 20, 64, 4, 4,
                true), 64, Duration.ofSeconds(1));
        try (RouterServer real = new RouterServer(config, new ServerSecurity(TlsFiles.server(cert.cert(),
                cert.key()), BearerTokens.load(serverTokens), null)).start(() -> {
                    try {
                        return io.expertmesh.core.LoadedModel.open(RunCommandTest.FIXTURE,
                                new io.expertmesh.core.kernel.ScalarKernels(), (a, b) -> { });
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                })) {
            real.awaitLoaded();
            String target = "localhost:" + real.port();
            String[] tls = {"--target", target, "--tls-ca", ca.certFile().toString()};
            // admin prints to the process's stderr: capture it
            java.io.PrintStream saved = System.err;
            java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
            System.setErr(new java.io.PrintStream(err, true));
            try {
                RunCommandTest.run(withEnv(java.util.Map.of()), concat(new String[] {"admin", "status"}, tls,
                        new String[] {"--token-file", adminToken.toString()}));
                RunCommandTest.run(withEnv(java.util.Map.of()), concat(new String[] {"admin", "status"}, tls,
                        new String[] {"--token-file", clientToken.toString()}));
            } finally {
                System.setErr(saved);
            }
            String out = err.toString();
            // the admin token passed TLS and the token check: the service itself answered (no workers here)
            assertTrue(out.contains("FAILED_PRECONDITION"), out);
            assertTrue(out.contains("PERMISSION_DENIED"), out);
            // a worker registering with a token lacking the admin scope gives up at once instead of retrying
            assertEquals(RouterRegistration.Outcome.REFUSED,
                    RouterRegistration.register(target, "127.0.0.1:1", io.expertmesh.security.TlsCredentials.channel(
                            TlsFiles.client(ca.certFile())), new io.expertmesh.security.BearerTokenCredentials(
                            io.expertmesh.security.BearerToken.of(TOKEN))));
        }
    }

    @Test
    void health_overTls_isServing_plaintextIsNot() {
        RunCommandTest.Run r = RunCommandTest.run("health", "--target", router.target(), "--tls-ca",
                ca.certFile().toString());
        assertEquals(0, r.exit(), r.err());
        r = RunCommandTest.run("health", "--target", router.target());
        assertEquals(1, r.exit(), r.err());
    }

    static String[] concat(String[]... parts) {
        return java.util.Arrays.stream(parts).flatMap(java.util.Arrays::stream).toArray(String[]::new);
    }
}
