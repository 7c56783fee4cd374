package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.security.ServerSecurity;
import io.grpc.Server;
import java.net.InetSocketAddress;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code --host} of serve and worker: the address their gRPC server listens on. */
class ListenOptionsTest {
    private static <T> T parse(String... args) {
        @SuppressWarnings("unchecked")
        T cmd = (T) Main.commandLine(CommandLine.defaultFactory(), Map.of()).parseArgs(args).subcommand()
                .commandSpec().userObject();
        return cmd;
    }

    @Test
    void serverBuilder_loopbackHost_listensOnLoopbackOnly() throws Exception {
        WorkerCommand w = parse("worker", "--host", "127.0.0.1");
        Server server = w.listen.serverBuilder("test", 0, ServerSecurity.plaintext(),
                io.expertmesh.worker.ExpertWorkerServer::transport).build().start();
        try {
            InetSocketAddress bound = (InetSocketAddress) server.getListenSockets().getFirst();
            assertTrue(bound.getAddress().isLoopbackAddress(), "bound " + bound);
            assertEquals(server.getPort(), bound.getPort());
        } finally {
            server.shutdownNow();
        }
    }

    @Test
    void host_default_everyInterfaceForServeAndWorker() {
        ServeCommand s = parse("serve");
        WorkerCommand w = parse("worker");
        assertTrue(s.listen.isWildcard() && w.listen.isWildcard(), "containers reach them from other hosts");
    }

    @Test
    void address_unresolvableHost_usageError() {
        WorkerCommand w = parse("worker", "--host", "no-such-host.invalid");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.listen.address(50061));
        assertTrue(e.getMessage().contains("--host no-such-host.invalid"), e.getMessage());
    }
}
