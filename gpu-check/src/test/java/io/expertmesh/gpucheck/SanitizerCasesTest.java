package io.expertmesh.gpucheck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The sanitizer script's filter names stay what deploy/gpu/sanitize.sh documents. */
class SanitizerCasesTest {
    @Test
    void sanitizerCases_namedAsTheScriptDocuments() throws Exception {
        KernelChecks checks = new KernelChecks(null, 1);
        assertEquals(List.of("mla-reg-o", "mla-smem-o", "gemm", "grouped-gemm", "topk", "linear-staged"),
                List.copyOf(checks.sanitizerCases().keySet()));
        String script = java.nio.file.Files.readString(java.nio.file.Path.of("../deploy/gpu/sanitize.sh"));
        for (String name : checks.sanitizerCases().keySet()) {
            assertTrue(script.contains(name), "sanitize.sh documents " + name);
        }
    }
}
