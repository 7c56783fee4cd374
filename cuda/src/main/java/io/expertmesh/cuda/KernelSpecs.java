package io.expertmesh.cuda;

import static io.expertmesh.cuda.KernelParam.F32;
import static io.expertmesh.cuda.KernelParam.I32;
import static io.expertmesh.cuda.KernelParam.PTR;

import java.util.List;

/**
 * The parameters of every kernel in {@code src/main/cuda}, as the launchers pass them. {@link CudaDevice} checks
 * each against the PTX of the module that defines it when the modules load, so a launcher and a kernel that
 * disagree (an argument added to one of them) fail the start-up probe, not a forward pass; launches then check
 * only that each argument has the declared kind.
 */
public final class KernelSpecs {
    private KernelSpecs() {
    }

    // forward.cu
    public static final KernelSpec ZERO_F32 = KernelSpec.of("zero_f32", PTR, I32);
    public static final KernelSpec ADD_F32 = KernelSpec.of("add_f32", PTR, PTR, I32);
    public static final KernelSpec ADD_BIAS_F32 = KernelSpec.of("add_bias_f32", PTR, PTR, I32);
    public static final KernelSpec F32_TO_BF16 = KernelSpec.of("f32_to_bf16", PTR, PTR, I32);
    public static final KernelSpec GATED_ADD_F32 = KernelSpec.of("gated_add_f32", PTR, PTR, PTR, I32);
    public static final KernelSpec EMBED_F32 = KernelSpec.of("embed_f32", PTR, PTR, PTR, I32, I32);
    public static final KernelSpec EMBED_BF16 = KernelSpec.of("embed_bf16", PTR, PTR, PTR, I32, I32);
    public static final KernelSpec RMS_NORM_STRIDED_F32 = KernelSpec.of("rms_norm_strided_f32", PTR, I32, PTR, PTR, I32,
            I32, F32);
    public static final KernelSpec HEAD_LINEAR_F32W_F32 = KernelSpec.of("head_linear_f32w_f32", PTR, I32, I32, PTR, I32,
            I32, I32, PTR, I32, I32, I32, I32);
    public static final KernelSpec HEAD_LINEAR_BF16W_F32 = KernelSpec.of("head_linear_bf16w_f32", PTR, I32, I32, PTR,
            I32, I32, I32, PTR, I32, I32, I32, I32);
    public static final KernelSpec COPY_STRIDED_F32 = KernelSpec.of("copy_strided_f32", PTR, I32, I32, I32, PTR, I32,
            I32, I32, I32);
    public static final KernelSpec GATHER_ROWS_F32 = KernelSpec.of("gather_rows_f32", PTR, PTR, I32, PTR, I32, I32);
    public static final KernelSpec SCATTER_ADD_ROWS_F32 = KernelSpec.of("scatter_add_rows_f32", PTR, PTR, PTR, I32, PTR,
            I32, I32);
    public static final KernelSpec ROUTE_BY_EXPERT = KernelSpec.of("route_by_expert", PTR, I32, I32, I32, PTR, PTR,
            PTR);
    public static final KernelSpec COMBINE_EXPERTS_F32 = KernelSpec.of("combine_experts_f32", PTR, PTR, PTR, PTR, I32,
            PTR, I32);
    public static final KernelSpec KV_WRITE_BF16 = KernelSpec.of("kv_write_bf16", PTR, I32, PTR, I32, I32, PTR, I32,
            I32);
    public static final KernelSpec MLA_ATTENTION_F32Q = KernelSpec.of("mla_attention_f32q", PTR, PTR, PTR, PTR, PTR,
            I32, I32, I32, I32, I32, I32, F32);

    // linear.cu
    public static final KernelSpec LINEAR_BF16W_F32 = KernelSpec.of("linear_bf16w_f32", PTR, PTR, PTR, I32, I32, I32);
    public static final KernelSpec LINEAR_F32W_F32 = KernelSpec.of("linear_f32w_f32", PTR, PTR, PTR, I32, I32, I32);
    public static final KernelSpec LINEAR_BF16W_F32_XS = KernelSpec.of("linear_bf16w_f32_xs", PTR, PTR, PTR, I32, I32,
            I32);
    public static final KernelSpec LINEAR_F32W_F32_XS = KernelSpec.of("linear_f32w_f32_xs", PTR, PTR, PTR, I32, I32,
            I32);
    public static final KernelSpec GROUPED_LINEAR_BF16W_F32 = KernelSpec.of("grouped_linear_bf16w_f32", PTR, PTR, PTR,
            PTR, I32, I32);
    public static final KernelSpec GROUPED_LINEAR_F32W_F32 = KernelSpec.of("grouped_linear_f32w_f32", PTR, PTR, PTR,
            PTR, I32, I32);
    public static final KernelSpec GROUPED_LINEAR_BF16W_F32_XS = KernelSpec.of("grouped_linear_bf16w_f32_xs", PTR, PTR,
            PTR, PTR, I32, I32);
    public static final KernelSpec GROUPED_LINEAR_F32W_F32_XS = KernelSpec.of("grouped_linear_f32w_f32_xs", PTR, PTR,
            PTR, PTR, I32, I32);
    public static final KernelSpec GEMM_BF16_TC = KernelSpec.of("gemm_bf16_tc", PTR, PTR, PTR, I32, I32, I32);
    public static final KernelSpec GROUPED_GEMM_BF16_TC = KernelSpec.of("grouped_gemm_bf16_tc", PTR, PTR, PTR, PTR, I32,
            I32);

    // elementwise.cu
    public static final KernelSpec RMS_NORM_F32 = KernelSpec.of("rms_norm_f32", PTR, PTR, PTR, I32, F32);
    public static final KernelSpec ROPE_INTERLEAVED_F32 = KernelSpec.of("rope_interleaved_f32", PTR, PTR, PTR, I32, I32,
            I32, I32, I32);
    public static final KernelSpec ROPE_HALF_F32 = KernelSpec.of("rope_half_f32", PTR, PTR, PTR, I32, I32, I32, I32,
            I32);
    public static final KernelSpec SWIGLU_F32 = KernelSpec.of("swiglu_f32", PTR, PTR, PTR, I32);
    public static final KernelSpec TOPK_GATE_F32 = KernelSpec.of("topk_gate_f32", PTR, PTR, I32, I32, I32, I32, I32,
            I32, I32, F32, PTR, PTR);

    // attention.cu
    public static final KernelSpec GQA_DECODE_PAGED = KernelSpec.of("gqa_decode_paged", PTR, PTR, PTR, PTR, PTR, I32,
            I32, I32, I32, I32, F32);
    public static final KernelSpec PREFILL_CAUSAL = KernelSpec.of("prefill_causal", PTR, PTR, PTR, PTR, I32, I32, I32,
            I32, I32, I32, F32);

    // mla_decode.cu
    public static final KernelSpec MLA_DECODE_SPLIT_512_64_S2 = KernelSpec.of("mla_decode_split_512_64_s2", PTR, PTR,
            PTR, PTR, PTR, PTR, I32, I32, I32, I32, F32);
    public static final KernelSpec MLA_DECODE_SPLIT_512_64_S1 = KernelSpec.of("mla_decode_split_512_64_s1", PTR, PTR,
            PTR, PTR, PTR, PTR, I32, I32, I32, I32, F32);
    public static final KernelSpec MLA_DECODE_SPLIT_512_64_S2_SMEM_O = KernelSpec.of(
            "mla_decode_split_512_64_s2_smem_o", PTR, PTR, PTR, PTR, PTR, PTR, I32, I32, I32, I32, F32);
    public static final KernelSpec MLA_DECODE_MERGE = KernelSpec.of("mla_decode_merge", PTR, PTR, PTR, I32, I32);

    /** Every kernel the Java side launches, checked against the loaded modules' PTX when they load. */
    public static final List<KernelSpec> ALL = List.of(
            ZERO_F32, ADD_F32, ADD_BIAS_F32, F32_TO_BF16, GATED_ADD_F32, EMBED_F32, EMBED_BF16, RMS_NORM_STRIDED_F32,
            HEAD_LINEAR_F32W_F32, HEAD_LINEAR_BF16W_F32, COPY_STRIDED_F32, GATHER_ROWS_F32, SCATTER_ADD_ROWS_F32,
            ROUTE_BY_EXPERT, COMBINE_EXPERTS_F32, KV_WRITE_BF16, MLA_ATTENTION_F32Q, LINEAR_BF16W_F32,
            LINEAR_F32W_F32, LINEAR_BF16W_F32_XS, LINEAR_F32W_F32_XS, GROUPED_LINEAR_BF16W_F32,
            GROUPED_LINEAR_F32W_F32, GROUPED_LINEAR_BF16W_F32_XS, GROUPED_LINEAR_F32W_F32_XS, GEMM_BF16_TC,
            GROUPED_GEMM_BF16_TC, RMS_NORM_F32, ROPE_INTERLEAVED_F32, ROPE_HALF_F32, SWIGLU_F32, TOPK_GATE_F32,
            GQA_DECODE_PAGED, PREFILL_CAUSAL, MLA_DECODE_SPLIT_512_64_S2, MLA_DECODE_SPLIT_512_64_S1,
            MLA_DECODE_SPLIT_512_64_S2_SMEM_O, MLA_DECODE_MERGE);
}
