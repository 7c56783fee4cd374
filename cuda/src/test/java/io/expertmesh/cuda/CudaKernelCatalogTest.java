package io.expertmesh.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The PTX build: runs on any machine; the nvcc/ptxas parts only where those tools are installed. */
class CudaKernelCatalogTest {
    /** Every kernel the Java launchers call, by module. */
    static final Map<String, Set<String>> EXPECTED = Map.of(
            "elementwise", Set.of("rms_norm_f32", "rope_interleaved_f32", "rope_half_f32", "swiglu_f32",
                    "topk_gate_f32"),
            "linear", Set.of("linear_bf16w_f32", "linear_f32w_f32", "linear_bf16w_f32_xs", "linear_f32w_f32_xs",
                    "grouped_linear_bf16w_f32", "grouped_linear_f32w_f32", "grouped_linear_bf16w_f32_xs",
                    "grouped_linear_f32w_f32_xs",
                    "gemm_bf16_tc", "grouped_gemm_bf16_tc"),
            "mla_decode", Set.of("mla_decode_split_512_64_s2", "mla_decode_split_512_64_s1",
                    "mla_decode_split_512_64_s2_smem_o", "mla_decode_merge"),
            "attention", Set.of("gqa_decode_paged", "prefill_causal"),
            "forward", Set.of("zero_f32", "add_f32", "add_bias_f32", "f32_to_bf16", "gated_add_f32", "embed_f32",
                    "embed_bf16", "rms_norm_strided_f32", "head_linear_f32w_f32", "head_linear_bf16w_f32",
                    "copy_strided_f32", "gather_rows_f32", "scatter_add_rows_f32", "kv_write_bf16",
                    "route_by_expert", "combine_experts_f32",
                    "mla_attention_f32q"));

    static Optional<Path> tool(String name) {
        for (String dir : (System.getenv().getOrDefault("PATH", "") + ":/usr/local/cuda/bin:/usr/local/bin")
                .split(":")) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, name);
            if (Files.isExecutable(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    @Test
    void catalog_builtWithNvcc_holdsEveryModuleForBothTargetsWithItsKernels() {
        assumeTrue(Boolean.getBoolean("expertmesh.ptx.built"), "built without the nvcc profile");
        CudaKernelCatalog c = CudaKernelCatalog.get();
        assertTrue(c.hasKernels(), c.describe());
        assertEquals(new TreeSet<>(EXPECTED.keySet()), new TreeSet<>(c.modules()));
        for (String module : c.modules()) {
            for (String target : List.of("sm_90", "sm_80")) {
                String ptx = new String(c.ptx(module, target), StandardCharsets.US_ASCII);
                assertEquals(EXPECTED.get(module), Set.copyOf(PtxEntries.of(ptx)), module + "." + target);
                String want = target.equals("sm_90") ? ".target sm_90" : ".target sm_80";
                assertTrue(ptx.contains(want), module + "." + target + " lacks " + want);
            }
        }
    }

    /**
     * The fatbin a Hopper card loads: the fatbin header, an ELF image (the sm_90 machine code) and the compute_90
     * PTX text (for later cards' JIT), so an H200 runs what ptxas.txt reports instead of JIT-compiling at start-up.
     */
    @Test
    void catalog_builtWithNvcc_shipsAFatbinWithSm90MachineCodeAndPtx() {
        assumeTrue(Boolean.getBoolean("expertmesh.ptx.built"), "built without the nvcc profile");
        CudaKernelCatalog c = CudaKernelCatalog.get();
        for (String module : c.modules()) {
            byte[] f = c.fatbin(module);
            assertTrue(f != null && f.length > 16, module + " has no fatbin");
            int magic = (f[0] & 0xff) | (f[1] & 0xff) << 8 | (f[2] & 0xff) << 16 | (f[3] & 0xff) << 24;
            assertEquals(0xBA55ED50, magic, module + ": not a fatbin");
            String text = new String(f, StandardCharsets.ISO_8859_1);
            assertTrue(text.contains("\u007fELF"), module + ": the fatbin holds no machine code");
            assertTrue(text.contains(".target sm_90"), module + ": the fatbin holds no compute_90 PTX");
        }
    }

    /** Every kernel the launchers declare fits the packaged PTX of both targets (what the probe checks at load). */
    @Test
    void kernelSpecs_fitThePtxOfEveryTarget_andEveryEntryIsDeclared() {
        assumeTrue(Boolean.getBoolean("expertmesh.ptx.built"), "built without the nvcc profile");
        CudaKernelCatalog c = CudaKernelCatalog.get();
        Set<String> declared = new TreeSet<>();
        KernelSpecs.ALL.forEach(k -> declared.add(k.name()));
        for (String target : List.of("sm_90", "sm_80")) {
            Map<String, List<String>> sigs = new java.util.HashMap<>();
            for (String module : c.modules()) {
                sigs.putAll(PtxEntries.signatures(new String(c.ptx(module, target), StandardCharsets.US_ASCII)));
            }
            assertEquals(List.of(), CudaDevice.specMismatches(KernelSpecs.ALL, sigs), target);
            assertEquals(new TreeSet<>(sigs.keySet()), declared, target + ": every entry launchable, nothing else");
        }
    }

    /** CudaDevice resolves only what ALL lists: a constant left out of it would fail its launcher's construction. */
    @Test
    void kernelSpecs_everyConstantIsInAll_onceByName() throws IllegalAccessException {
        List<KernelSpec> constants = new java.util.ArrayList<>();
        for (java.lang.reflect.Field f : KernelSpecs.class.getFields()) {
            if (f.getType() == KernelSpec.class) {
                constants.add((KernelSpec) f.get(null));
            }
        }
        assertEquals(Set.copyOf(constants), Set.copyOf(KernelSpecs.ALL));
        assertEquals(KernelSpecs.ALL.size(), KernelSpecs.ALL.stream().map(KernelSpec::name).distinct().count());
    }

    @Test
    void ptx_sm90_isAcceptedByPtxas(@TempDir Path tmp) throws IOException, InterruptedException {
        Optional<Path> ptxas = tool("ptxas");
        assumeTrue(ptxas.isPresent(), "ptxas not installed");
        CudaKernelCatalog c = CudaKernelCatalog.get();
        assumeTrue(c.hasKernels(), c.describe());
        for (String module : c.modules()) {
            byte[] z = c.ptx(module, "sm_90");
            Path f = tmp.resolve(module + ".ptx");
            Files.write(f, Arrays.copyOf(z, z.length - 1));  // without the driver's NUL terminator
            Process p = new ProcessBuilder(ptxas.get().toString(), "-arch=sm_90", "-o", tmp.resolve(module + ".cubin")
                    .toString(), f.toString()).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "ptxas timed out on " + module);
            assertEquals(0, p.exitValue(), module + ": " + log);
            assertTrue(Files.size(tmp.resolve(module + ".cubin")) > 0, module);
        }
    }

    @Test
    void ptx_nulTerminatedForTheDriver() {
        CudaKernelCatalog c = CudaKernelCatalog.get();
        assumeTrue(c.hasKernels(), c.describe());
        byte[] z = c.ptx("elementwise", "sm_90");
        assertEquals(0, z[z.length - 1]);
    }

    @Test
    void describe_withoutKernels_saysSo() {
        CudaKernelCatalog empty = CudaKernelCatalog.of(List.of(), "none");
        assertFalse(empty.hasKernels());
        assertTrue(empty.describe().startsWith("no GPU kernels in this build"), empty.describe());
        CudaKernelCatalog partial = CudaKernelCatalog.of(List.of("linear"), "nvcc");
        assertFalse(partial.hasKernels());
        assertTrue(partial.describe().contains("incomplete"), partial.describe());
    }

    @Test
    void probe_jarWithoutKernels_isNoGpuWithThatReason() {
        CudaProbe p = CudaDevice.runProbe(CudaKernelCatalog.of(List.of(), "none"));
        assertFalse(p.available());
        assertTrue(p.describe().startsWith("no GPU: no GPU kernels in this build"), p.describe());
    }

    @Test
    void ptxSignatures_parsedAndDeclaredParametersMatchedAgainstThem() {
        String ptx = ".visible .entry k(\n\t.param .u64 k_param_0,\n\t.param .u32 k_param_1,\n\t.param .f32 k_param_2\n)"
                + "\n{ ret; }\n.visible .entry none(\n)\n{ }\n";
        Map<String, List<String>> sigs = PtxEntries.signatures(ptx);
        assertEquals(List.of("u64", "u32", "f32"), sigs.get("k"));
        assertEquals(List.of(), sigs.get("none"));
        KernelParam p = KernelParam.PTR;
        KernelParam i = KernelParam.I32;
        KernelParam f = KernelParam.F32;
        assertEquals(null, KernelSpec.of("k", p, i, f).mismatch(sigs.get("k")));
        assertEquals("k is declared with 2 parameters; its PTX has 3", KernelSpec.of("k", p, i).mismatch(sigs.get("k")));
        assertEquals("k parameter 1 is declared F32; its PTX type is .u32",
                KernelSpec.of("k", p, f, f).mismatch(sigs.get("k")));
        assertEquals("k parameter 0 is declared I32; its PTX type is .u64",
                KernelSpec.of("k", i, i, f).mismatch(sigs.get("k")));
        assertEquals("no kernel gone in the loaded modules", KernelSpec.of("gone", p).mismatch(sigs.get("gone")));
        // At load: every mismatch of the declared set, in order; none when all fit.
        assertEquals(List.of("k parameter 2 is declared I32; its PTX type is .f32",
                        "no kernel gone in the loaded modules"),
                CudaDevice.specMismatches(List.of(KernelSpec.of("k", p, i, i), KernelSpec.of("none"),
                        KernelSpec.of("gone", p)), sigs));
        assertEquals(List.of(), CudaDevice.specMismatches(List.of(KernelSpec.of("k", p, i, f)), sigs));
    }

    @Test
    void ptxSignatures_builtWithNvcc_everyEntryHasOne() {
        assumeTrue(Boolean.getBoolean("expertmesh.ptx.built"), "built without the nvcc profile");
        CudaKernelCatalog c = CudaKernelCatalog.get();
        for (String module : c.modules()) {
            String ptx = new String(c.ptx(module, "sm_90"), StandardCharsets.US_ASCII);
            Map<String, List<String>> sigs = PtxEntries.signatures(ptx);
            assertEquals(Set.copyOf(PtxEntries.of(ptx)), sigs.keySet(), module);
            sigs.forEach((k, types) -> assertTrue(!types.isEmpty() && types.stream().allMatch(
                    t -> t.equals("u64") || t.equals("u32") || t.equals("f32")), k + " " + types));
        }
        // CudaOps's generic MLA kernel: 5 pointers, 6 ints, the scale.
        String fwd = new String(c.ptx("forward", "sm_90"), StandardCharsets.US_ASCII);
        assertEquals(List.of("u64", "u64", "u64", "u64", "u64", "u32", "u32", "u32", "u32", "u32", "u32", "f32"),
                PtxEntries.signatures(fwd).get("mla_attention_f32q"));
    }

    @Test
    void ptxEntries_parsesVisibleEntries() {
        String ptx = ".visible .entry foo_bar(\n.param .u64 a\n)\n{ ret; }\n.visible .entry baz2 (\n)\n{ }\n"
                + ".func notAKernel(\n)";
        assertEquals(List.of("foo_bar", "baz2"), PtxEntries.of(ptx));
    }
}
