package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.expertmesh.cli.RunCommandTest.Run;
import io.expertmesh.router.experts.WireFormat;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code serve --expert-wire exact|bf16}: a picocli enum, any case; anything else is one line and exit 2. */
class ExpertWireOptionTest {

    @Test
    void serve_expertWireAnyCase_parsesToTheWireFormat() {
        ServeCommand s = (ServeCommand) Main.commandLine(CommandLine.defaultFactory(), Map.of())
                .parseArgs("serve", "--workers", "127.0.0.1:1", "--expert-wire", "BF16").subcommand()
                .commandSpec().userObject();
        assertEquals(WireFormat.BF16, s.expertClusterConfig().wire());
    }

    @Test
    void serve_expertWireUnknown_oneLineExit2() {
        Run r = RunCommandTest.run("serve", "--workers", "127.0.0.1:1", "--expert-wire", "f16");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().contains("--expert-wire"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }
}
