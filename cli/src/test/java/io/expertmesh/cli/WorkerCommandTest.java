package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code expertmesh worker} is registered and parses its options. */
class WorkerCommandTest {

    @Test
    void worker_options_parsed() {
        CommandLine cl = Main.commandLine();
        CommandLine.ParseResult r = cl.parseArgs("worker", "--model", "m", "--port", "0", "--experts", "shard:1/4");
        WorkerCommand w = (WorkerCommand) r.subcommand().commandSpec().userObject();
        assertEquals(0, w.port);
        assertEquals("shard:1/4", w.experts);
        assertEquals("m", w.model.model.toString());
    }

    @Test
    void worker_defaults_allExperts() {
        CommandLine cl = Main.commandLine();
        WorkerCommand w = (WorkerCommand) cl.parseArgs("worker").subcommand().commandSpec().userObject();
        assertEquals("all", w.experts);
    }

    @Test
    void worker_badExpertSpec_userErrorNotAStackTrace() {
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setErr(new PrintWriter(err));
        int code = cl.execute("worker", "--model", "../core/src/test/resources/fixtures/deepseek-v3-tiny/f32",
                "--port", "0", "--experts", "shard:3/2");
        assertTrue(code != 0);
        assertTrue(err.toString().contains("shard:I/N"), err.toString());
    }
}
