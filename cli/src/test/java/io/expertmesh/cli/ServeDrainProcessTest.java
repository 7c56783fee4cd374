package io.expertmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** {@code serve} as an OS process: SIGTERM drains it, and a clean drain ends the process with status 0. */
class ServeDrainProcessTest {
    @Test
    void serve_sigterm_drainsAndExitsZero() throws Exception {
        try (ChildProcesses children = new ChildProcesses()) {
            ChildProcesses.Child router = children.start("router", List.of("serve", "--model",
                    RunCommandTest.FIXTURE.toString(), "--port", "0", "--threads", "1", "--kv-cache-mb", "16",
                    "--kv-store", "none", "--drain-grace-seconds", "5"));
            router.process().destroy(); // SIGTERM
            assertTrue(router.process().waitFor(60, TimeUnit.SECONDS), String.join("\n", router.output()));
            assertEquals(0, router.process().exitValue(), String.join("\n", router.output()));
        }
    }
}
