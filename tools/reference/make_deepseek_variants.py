#!/usr/bin/python3
"""Generates small random DeepSeek-V3-architecture test fixtures with reference logits.

For each variant this writes, into core/src/test/resources/fixtures/<name>/:
  config.json        HF DeepSeek-V3 config (same keys as the shared deepseek-v3-tiny fixture)
  model.safetensors  HF tensor names, F32 tensors holding bf16-representable values
                     (e_score_correction_bias: arbitrary non-zero F32)
  reference.json     logits from deepseek_v3_reference.py (float32, absorbed MLA), schema as
                     the shared fixture: prompt_ids, prefill.positions[i].{argmax,logits},
                     greedy_tokens, decode[i].{step,position,input_id,argmax,logits}, checks,
                     model_args, config_note.

Deterministic: every variant has a fixed seed; a seed is only skipped (seed+1, ...) when
the model it gives is not a discriminating test (a top-2 logit margin below 1e-3 anywhere,
or an e_score_correction_bias that never changes an expert selection). The seed actually
used is recorded in reference.json.

Tool only, never a runtime dependency. Run from the repository root:
    /usr/bin/python3 tools/reference/make_deepseek_variants.py [--only NAME] [--out DIR]
"""
import argparse
import copy
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_reference as ref  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "core", "src", "test", "resources", "fixtures")
MAX_FIXTURE_BYTES = 400 * 1024
MIN_MARGIN = 1e-3

# The shared fixture's config.json, key for key; variants override values only.
BASE_CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": 256,
    "hidden_size": 32,
    "intermediate_size": 64,
    "moe_intermediate_size": 16,
    "num_hidden_layers": 3,
    "num_nextn_predict_layers": 0,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_shared_experts": 1,
    "n_routed_experts": 8,
    "ep_size": 1,
    "routed_scaling_factor": 2.5,
    "kv_lora_rank": 32,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 8,
    "v_head_dim": 16,
    "qk_nope_head_dim": 16,
    "topk_method": "noaux_tc",
    "n_group": 2,
    "topk_group": 1,
    "num_experts_per_tok": 2,
    "moe_layer_freq": 1,
    "first_k_dense_replace": 1,
    "norm_topk_prob": True,
    "scoring_func": "sigmoid",
    "hidden_act": "silu",
    "max_position_embeddings": 256,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-06,
    "use_cache": True,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "rope_interleave": True,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "torch_dtype": "float32",
    "rope_scaling": {
        "type": "yarn",
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 64,
        "beta_fast": 32,
        "beta_slow": 1,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
    },
}


def yarn(factor, original, mscale=1.0, mscale_all_dim=1.0):
    return {"type": "yarn", "rope_type": "yarn", "factor": factor,
            "original_max_position_embeddings": original, "beta_fast": 32, "beta_slow": 1,
            "mscale": mscale, "mscale_all_dim": mscale_all_dim}


VARIANTS = [
    {
        "name": "deepseek-v3-qlora0",
        "seed": 101,
        "prompt_len": 12,
        "decode": 6,
        "config": {
            "q_lora_rank": None, "num_attention_heads": 4, "num_key_value_heads": 4,
            "kv_lora_rank": 24, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 12,
            "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
            "rope_scaling": yarn(4.0, 32), "max_position_embeddings": 128,
        },
        "note": ("q_lora_rank null: queries come from a plain self_attn.q_proj (no q_a_proj / "
                 "q_a_layernorm / q_b_proj tensors). v_head_dim 12 != qk_nope_head_dim 16, "
                 "kv_lora_rank 24. YaRN on (factor 4, original 32 < max_position_embeddings 128)."),
    },
    {
        "name": "deepseek-v3-groups4",
        "seed": 202,
        "prompt_len": 10,
        "decode": 6,
        "config": {
            "num_hidden_layers": 4, "first_k_dense_replace": 2,
            "n_routed_experts": 16, "n_group": 4, "topk_group": 2, "num_experts_per_tok": 4,
            "n_shared_experts": 2, "norm_topk_prob": True, "routed_scaling_factor": 1.5,
            "hidden_size": 32, "intermediate_size": 48, "moe_intermediate_size": 8,
            "q_lora_rank": 16, "kv_lora_rank": 16, "num_attention_heads": 2, "num_key_value_heads": 2,
            "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
            "rope_scaling": yarn(4.0, 64), "max_position_embeddings": 256,
        },
        "note": ("16 routed experts in 4 groups of 4, topk_group 2, top-4, 2 shared experts "
                 "(one MLP of width 2*moe_intermediate_size), first_k_dense_replace 2 of 4 layers, "
                 "norm_topk_prob true, routed_scaling_factor 1.5. YaRN on."),
    },
    {
        "name": "deepseek-v3-noyarn",
        "seed": 303,
        "prompt_len": 70,
        "decode": 4,
        "config": {
            "rope_scaling": None, "max_position_embeddings": 128, "num_hidden_layers": 2,
            "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
            "q_lora_rank": 16, "kv_lora_rank": 16, "num_attention_heads": 2, "num_key_value_heads": 2,
            "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
            "routed_scaling_factor": 2.0,
        },
        "note": ("rope_scaling null, max_position_embeddings 128: plain interleaved RoPE, no YaRN "
                 "frequency correction and softmax scale exactly qk_head_dim^-0.5. 70-token prompt."),
    },
    {
        "name": "deepseek-v3-long-yarn",
        "seed": 404,
        "prompt_len": 40,
        "decode": 6,
        "config": {
            "rope_scaling": yarn(8.0, 16, mscale=0.707, mscale_all_dim=0.707),
            "max_position_embeddings": 256, "num_hidden_layers": 3,
            "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
            "q_lora_rank": 16, "kv_lora_rank": 16, "num_attention_heads": 2, "num_key_value_heads": 2,
            "qk_nope_head_dim": 8, "qk_rope_head_dim": 16, "v_head_dim": 8,
        },
        "note": ("YaRN factor 8, original_max_position_embeddings 16, max_position_embeddings 256, "
                 "mscale = mscale_all_dim = 0.707: softmax scale = qk_head_dim^-0.5 * m^2 with "
                 "m = 0.1*mscale_all_dim*ln(8)+1. qk_rope_head_dim 16 (8 frequency pairs, correction "
                 "range low=0 high=1). 40-token prompt crossing position 16, 6 decode steps."),
    },
]


# --------------------------------------------------------------------------------------

def to_bf16_values(a):
    """Round float32 values to the nearest bf16 (ties to even), kept as float32."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def random_weights(cfg, rng):
    """HF-named tensors. Scales follow the shared fixture: embeddings std 1, lm_head std 0.5,
    projections std 1/sqrt(in_features), norm weights 1 + 0.1*N(0,1)."""
    a = ref.ModelArgs(cfg)
    w = {}

    def lin(name, out_f, in_f):
        w[name] = to_bf16_values(rng.standard_normal((out_f, in_f)) / np.sqrt(in_f))

    def norm(name, n):
        w[name] = to_bf16_values(1.0 + 0.1 * rng.standard_normal(n))

    def mlp(prefix, inter):
        lin(prefix + "gate_proj.weight", inter, a.dim)
        lin(prefix + "up_proj.weight", inter, a.dim)
        lin(prefix + "down_proj.weight", a.dim, inter)

    qk = a.qk_nope_head_dim + a.qk_rope_head_dim
    w["model.embed_tokens.weight"] = to_bf16_values(rng.standard_normal((a.vocab_size, a.dim)))
    for i in range(a.n_layers):
        p = f"model.layers.{i}."
        norm(p + "input_layernorm.weight", a.dim)
        norm(p + "post_attention_layernorm.weight", a.dim)
        s = p + "self_attn."
        if a.q_lora_rank == 0:
            lin(s + "q_proj.weight", a.n_heads * qk, a.dim)
        else:
            lin(s + "q_a_proj.weight", a.q_lora_rank, a.dim)
            norm(s + "q_a_layernorm.weight", a.q_lora_rank)
            lin(s + "q_b_proj.weight", a.n_heads * qk, a.q_lora_rank)
        lin(s + "kv_a_proj_with_mqa.weight", a.kv_lora_rank + a.qk_rope_head_dim, a.dim)
        norm(s + "kv_a_layernorm.weight", a.kv_lora_rank)
        lin(s + "kv_b_proj.weight", a.n_heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank)
        lin(s + "o_proj.weight", a.dim, a.n_heads * a.v_head_dim)
        m = p + "mlp."
        if i < a.n_dense_layers:
            mlp(m, a.inter_dim)
        else:
            lin(m + "gate.weight", a.n_routed_experts, a.dim)
            # F32, deliberately not bf16-rounded, never zero; comparable to the sigmoid spread
            bias = (0.02 + 0.08 * rng.random(a.n_routed_experts)) * rng.choice([-1.0, 1.0], a.n_routed_experts)
            w[m + "gate.e_score_correction_bias"] = bias.astype(np.float32)
            for e in range(a.n_routed_experts):
                mlp(f"{m}experts.{e}.", a.moe_inter_dim)
            if a.n_shared_experts > 0:
                mlp(m + "shared_experts.", a.n_shared_experts * a.moe_inter_dim)
    norm("model.norm.weight", a.dim)
    w["lm_head.weight"] = to_bf16_values(0.5 * rng.standard_normal((a.vocab_size, a.dim)))
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in w.items()}


def r6(x):
    """6 significant digits, as a JSON float."""
    return float(f"{x:.6g}")


def top2_margin(logits):
    v = torch.topk(logits, 2).values
    return float(v[0] - v[1])


def build(variant, seed):
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg.update(copy.deepcopy(variant["config"]))
    rng = np.random.default_rng(seed)
    weights = random_weights(cfg, rng)
    tw = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    args = ref.ModelArgs(cfg)
    prompt = [cfg["bos_token_id"]] + [int(t) for t in rng.integers(2, cfg["vocab_size"], variant["prompt_len"] - 1)]

    absorb = ref.Transformer(args, tw, "absorb")
    prefill, greedy, decode = ref.run_greedy(absorb, prompt, variant["decode"])
    naive = ref.Transformer(ref.ModelArgs(cfg), tw, "naive")
    n_prefill, n_greedy, n_decode = ref.run_greedy(naive, prompt, variant["decode"])
    naive_diff = max([float((prefill - n_prefill).abs().max())] +
                     [float((a - b).abs().max()) for a, b in zip(decode, n_decode)])
    all_logits = list(prefill) + list(decode)
    margin = min(top2_margin(l) for l in all_logits)
    rounded_argmax_ok = all(
        int(torch.tensor([r6(x) for x in l.tolist()]).argmax()) == int(l.argmax()) for l in all_logits)
    bias_changed = absorb.bias_changed_selection()
    checks = {
        "naive_vs_absorb_max_abs_diff": naive_diff,
        "naive_greedy_tokens": n_greedy,
        "naive_greedy_identical": n_greedy == greedy,
        "min_top2_margin": margin,
        "rounded_logits_keep_argmax": rounded_argmax_ok,
        "bias_changed_selection_token_layers": bias_changed,
        "yarn_active": args.yarn_active,
        "softmax_scale": absorb.layers[0].attn.softmax_scale,
    }
    good = (margin >= MIN_MARGIN and bias_changed > 0 and n_greedy == greedy and rounded_argmax_ok)
    return cfg, weights, prompt, prefill, greedy, decode, checks, args, good


def write_fixture(out_dir, variant, seed, cfg, weights, prompt, prefill, greedy, decode, checks, args):
    d = os.path.join(out_dir, variant["name"])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    ref.save_safetensors(os.path.join(d, "model.safetensors"), weights)
    positions = [{"argmax": int(l.argmax()), "logits": [r6(x) for x in l.tolist()]} for l in prefill]
    steps = [{"step": i, "position": len(prompt) + i, "input_id": greedy[i], "argmax": int(l.argmax()),
              "logits": [r6(x) for x in l.tolist()]} for i, l in enumerate(decode)]
    doc = {
        "generator": "tools/reference/make_deepseek_variants.py (deepseek_v3_reference.py, a float32 "
                     "re-statement of deepseek-ai/DeepSeek-V3 inference/model.py, validated bit-exact "
                     "against the shared deepseek-v3-tiny reference)",
        "seed": seed,
        "compute_dtype": "float32",
        "attn_impl": "absorb",
        "config_note": variant["note"],
        "note": ("weights are bf16-representable values stored as F32; e_score_correction_bias is "
                 "arbitrary F32. prefill.positions[i] = logits after prompt_ids[:i+1]; "
                 "greedy_tokens[0] = argmax of the last prefill position; decode[i] feeds "
                 "greedy_tokens[i] at position len(prompt)+i. Logits rounded to 6 significant digits."),
        "model_args": args.as_model_py_dict(),
        "prompt_ids": prompt,
        "prefill": {"positions": positions},
        "greedy_tokens": greedy,
        "decode": steps,
        "checks": checks,
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    sizes = {n: os.path.getsize(os.path.join(d, n)) for n in ("config.json", "model.safetensors", "reference.json")}
    return d, sizes


def main():
    ap = argparse.ArgumentParser(description="Generate DeepSeek-V3 variant fixtures")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", action="append", help="variant name (repeatable)")
    opts = ap.parse_args()
    torch.set_num_threads(1)
    ok = True
    for v in VARIANTS:
        if opts.only and v["name"] not in opts.only:
            continue
        for seed in range(v["seed"], v["seed"] + 50):
            built = build(v, seed)
            if built[-1]:
                break
            print(f"{v['name']}: seed {seed} rejected ({json.dumps(built[6])})", file=sys.stderr)
        else:
            raise SystemExit(f"{v['name']}: no acceptable seed")
        cfg, weights, prompt, prefill, greedy, decode, checks, args, _ = built
        d, sizes = write_fixture(opts.out, v, seed, cfg, weights, prompt, prefill, greedy, decode, checks, args)
        total = sum(sizes.values())
        ok &= total <= MAX_FIXTURE_BYTES
        print(json.dumps({"fixture": os.path.relpath(d, REPO_ROOT), "seed": seed, "bytes": sizes, "total": total,
                          "greedy_tokens": greedy, **{k: checks[k] for k in (
                              "naive_vs_absorb_max_abs_diff", "min_top2_margin",
                              "bias_changed_selection_token_layers", "yarn_active", "softmax_scale")}}))
    if not ok:
        raise SystemExit(f"a fixture exceeds {MAX_FIXTURE_BYTES} bytes")


if __name__ == "__main__":
    main()
