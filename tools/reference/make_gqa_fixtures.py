#!/usr/bin/python3
"""Generate tiny random Mixtral / Qwen2-MoE / Qwen3-MoE fixtures with reference logits.

    /usr/bin/python3 tools/reference/make_gqa_fixtures.py [--out core/src/test/resources/fixtures]
                                                         [--only mixtral-tiny,...]

For each family it writes <out>/<name>/{config.json, model.safetensors, reference.json}:
HF config.json field names and HF tensor names, every weight bf16-representable but
stored as F32, and reference.json in the schema of shared/fixtures/deepseek-v3-tiny
(prompt_ids, prefill.positions[i] = logits after prompt_ids[:i+1], greedy_tokens,
decode[i] feeding greedy_tokens[i] at position len(prompt)+i, checks).

Deterministic: a fixed seed per family; if a greedy step's top-2 gap is below
MIN_MARGIN the seed is bumped (recorded in reference.json).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gqa_moe_reference as ref  # noqa: E402

PROMPT_LEN = 10          # BOS + 9 tokens
DECODE_STEPS = 6
MIN_MARGIN = 1e-2        # required top-2 logit gap at every greedy step (brief asks > 1e-3)
MAX_PATH_DIFF = 5e-5     # full causal pass vs incremental KV-cache pass

COMMON = {
    "vocab_size": 256, "hidden_size": 64, "num_hidden_layers": 3,
    "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu",
    "max_position_embeddings": 256, "initializer_range": 0.02, "rms_norm_eps": 1e-6,
    "use_cache": True, "tie_word_embeddings": False, "attention_dropout": 0.0,
    "output_router_logits": False, "torch_dtype": "float32",
}

FAMILIES = {
    "mixtral-tiny": dict(COMMON, **{
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "intermediate_size": 16,            # Mixtral experts use intermediate_size
        "num_local_experts": 8, "num_experts_per_tok": 2,
        "rope_theta": 1000000.0, "sliding_window": None,
        "router_aux_loss_coef": 0.02, "router_jitter_noise": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "rms_norm_eps": 1e-5,
    }),
    "qwen2-moe-tiny": dict(COMMON, **{
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
        "intermediate_size": 64,            # dense MLP of the mlp_only_layers
        "moe_intermediate_size": 16, "shared_expert_intermediate_size": 32,
        "num_experts": 8, "num_experts_per_tok": 4, "norm_topk_prob": False,
        "decoder_sparse_step": 1, "mlp_only_layers": [0],
        "rope_theta": 10000.0, "use_sliding_window": False, "sliding_window": 256,
        "max_window_layers": 3, "router_aux_loss_coef": 0.001,
        "bos_token_id": 0, "eos_token_id": 1,
    }),
    "qwen3-moe-tiny": dict(COMMON, **{
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
        "head_dim": 32,                     # != hidden_size / num_attention_heads (16)
        "intermediate_size": 64, "moe_intermediate_size": 16,
        "num_experts": 8, "num_experts_per_tok": 4, "norm_topk_prob": True,
        "decoder_sparse_step": 1, "mlp_only_layers": [],
        "attention_bias": False, "rope_theta": 1000000.0, "rope_scaling": None,
        "use_sliding_window": False, "sliding_window": None, "max_window_layers": 3,
        "router_aux_loss_coef": 0.001,
        "bos_token_id": 0, "eos_token_id": 1,
    }),
}
SEEDS = {"mixtral-tiny": 2024, "qwen2-moe-tiny": 2025, "qwen3-moe-tiny": 2026}


def r6(v):
    """Round to 6 significant digits."""
    return float("%.6g" % v)


def summarise(logits):
    """logits: [V] -> dict like the DeepSeek fixture (argmax, max, min, top10, logits)."""
    vals, idx = torch.topk(logits, 10)
    return {"argmax": int(idx[0]), "max": r6(vals[0]), "min": r6(logits.min()),
            "top10": [[int(i), r6(v)] for i, v in zip(idx, vals)],
            "logits": [r6(v) for v in logits.tolist()]}


def margin(logits):
    v = torch.topk(logits, 2).values
    return float(v[0] - v[1])


def compute(cfg, w, prompt):
    """Returns (prefill_full [T,V], prefill_inc [T,V], greedy, decode list, extra checks)."""
    m = ref.Transformer(cfg, w)
    full = m.forward_full(prompt)
    cache = m.new_cache()
    inc = torch.stack([m.forward_step(t, i, cache) for i, t in enumerate(prompt)])
    greedy = [int(full[-1].argmax())]
    decode, margins = [], [margin(full[-1])]
    for s in range(DECODE_STEPS):
        pos = len(prompt) + s
        lg = m.forward_step(greedy[s], pos, cache)
        decode.append((s, pos, greedy[s], lg))
        margins.append(margin(lg))
        greedy.append(int(lg.argmax()))
    # decode steps recomputed by a fresh full causal pass over prompt + greedy[:s+1]
    full_all = m.forward_full(prompt + greedy[:DECODE_STEPS])
    dec_diff = max((full_all[len(prompt) + s] - decode[s][3]).abs().max().item() for s in range(DECODE_STEPS))
    return full, inc, greedy, decode, margins, dec_diff


def sensitivity(cfg, w, prompt, base_last):
    """How much the last prefill logits move under plausible implementation mistakes."""
    out = {}

    def diff(m):
        return r6((m.forward_full(prompt)[-1] - base_last).abs().max().item())

    out["interleaved_rope"] = diff(ref.Transformer(cfg, w, "interleaved"))
    if cfg.model_type != "mixtral":
        c2 = ref.Config(dict(cfg.raw))
        c2.norm_topk_prob = not cfg.norm_topk_prob
        out["norm_topk_prob_flipped"] = diff(ref.Transformer(c2, w))
    else:
        c2 = ref.Config(dict(cfg.raw))
        c2.norm_topk_prob = False
        mm = ref.Transformer(c2, w)
        for layer in mm.layers:
            layer.mlp.gate.renormalise = False
        out["no_topk_renormalisation"] = diff(mm)
    if cfg.model_type == "qwen2_moe":
        mm = ref.Transformer(cfg, w)
        for layer in mm.layers:
            if isinstance(layer.mlp, ref.MoE):
                layer.mlp.shared_gate = torch.full_like(layer.mlp.shared_gate, 0.0)  # sigmoid -> 0.5
        out["shared_expert_gate_ignored(0.5)"] = diff(mm)
        mm = ref.Transformer(cfg, w)
        for layer in mm.layers:
            layer.attn.bq = layer.attn.bk = layer.attn.bv = None
        out["qkv_bias_dropped"] = diff(mm)
        c3 = ref.Config(dict(cfg.raw, mlp_only_layers=[]))
        mm = ref.Transformer(c3, dict(w, **dense_as_moe_stub(cfg, w)))
        out["mlp_only_layers_ignored"] = diff(mm)
    if cfg.model_type == "qwen3_moe":
        mm = ref.Transformer(cfg, w)
        for layer in mm.layers:
            layer.attn.q_norm = layer.attn.k_norm = None
        out["qk_norm_skipped"] = diff(mm)
        mm = ref.Transformer(cfg, w)
        for layer in mm.layers:
            layer.attn.q_norm = torch.ones_like(layer.attn.q_norm)
            layer.attn.k_norm = torch.ones_like(layer.attn.k_norm)
        out["qk_norm_weights_ignored"] = diff(mm)
    return out


def dense_as_moe_stub(cfg, w):
    """For the mlp_only_layers sensitivity check: give the dense layers the routed weights of
    layer 1 (what a loader that ignored mlp_only_layers might look up)."""
    extra = {}
    src = [k for k in w if k.startswith("model.layers.1.mlp.")]
    for layer in range(cfg.num_hidden_layers):
        if layer not in cfg.sparse_layers:
            for k in src:
                extra[k.replace("model.layers.1.", "model.layers.%d." % layer)] = w[k]
    return extra


def make(name, out_dir):
    conf = FAMILIES[name]
    cfg = ref.Config(conf)
    seed = SEEDS[name]
    for attempt in range(50):
        gen = torch.Generator().manual_seed(seed)
        w = ref.random_weights(cfg, gen)
        lo = 3 if conf["bos_token_id"] < 3 and conf["eos_token_id"] < 3 else 0
        prompt = [conf["bos_token_id"]] + torch.randint(lo, conf["vocab_size"], (PROMPT_LEN - 1,),
                                                          generator=gen).tolist()
        full, inc, greedy, decode, margins, dec_diff = compute(cfg, w, prompt)
        if min(margins) > MIN_MARGIN and len(set(greedy)) > 2:
            break
        print("%s: seed %d rejected (min greedy margin %.2e, greedy %s)" % (name, seed, min(margins), greedy))
        seed += 1
    else:
        raise SystemExit("no acceptable seed for " + name)

    path_diff = (full - inc).abs().max().item()
    assert path_diff < MAX_PATH_DIFF, (name, path_diff)
    assert dec_diff < MAX_PATH_DIFF, (name, dec_diff)
    assert [int(r.argmax()) for r in full] == [int(r.argmax()) for r in inc]

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")
    ref.save_safetensors(w, os.path.join(d, "model.safetensors"), {"format": "pt"})
    # what is on disk is what the reference used
    back = ref.load_safetensors(os.path.join(d, "model.safetensors"))
    assert all(torch.equal(back[k], w[k]) for k in w) and set(back) == set(w)

    all_prefill_margins = [margin(r) for r in full]
    reference = {
        "generator": "tools/reference/make_gqa_fixtures.py using tools/reference/gqa_moe_reference.py "
                     "(independent re-implementation of HF %s semantics; CPU, torch %s)"
                     % (conf["architectures"][0], torch.__version__),
        "seed": seed,
        "compute_dtype": "float32",
        "attn_impl": "full causal pass (prefill); incremental KV cache (decode)",
        "note": "weights are bf16-representable, stored as F32. prefill.positions[i] = logits after "
                "prompt_ids[:i+1]; greedy_tokens[0] = argmax of the last prefill position; decode[i] "
                "feeds greedy_tokens[i] at position len(prompt)+i and its argmax is greedy_tokens[i+1]. "
                "Logits rounded to 6 significant digits.",
        "model_args": {"model_type": cfg.model_type, "head_dim": cfg.head_dim,
                       "num_experts": cfg.num_experts, "top_k": cfg.num_experts_per_tok,
                       "renormalise_topk": cfg.norm_topk_prob,
                       "sparse_layers": cfg.sparse_layers, "qkv_bias": cfg.attn_qkv_bias,
                       "o_bias": cfg.attn_o_bias, "qk_norm": cfg.qk_norm,
                       "shared_expert": cfg.shared_expert_intermediate_size > 0,
                       "rope": "rotate_half", "rope_theta": cfg.rope_theta},
        "prompt_ids": prompt,
        "prefill": {"positions": [summarise(r) for r in full]},
        "decode": [dict({"step": s, "position": p, "input_id": t}, **summarise(lg)) for s, p, t, lg in decode],
        "greedy_tokens": greedy,
        "checks": {
            "incremental_vs_full_prefill_max_abs_diff": path_diff,
            "incremental_decode_vs_full_recompute_max_abs_diff": dec_diff,
            "greedy_top2_margins": [r6(x) for x in margins],
            "min_greedy_top2_margin": r6(min(margins)),
            "min_prefill_top2_margin": r6(min(all_prefill_margins)),
            "last_prefill_max_abs_diff_if_wrong": sensitivity(cfg, w, prompt, full[-1]),
        },
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(reference, f, separators=(", ", ": "))
        f.write("\n")
    sizes = {fn: os.path.getsize(os.path.join(d, fn)) for fn in sorted(os.listdir(d))}
    print("%s: seed %d prompt %s greedy %s path diff %.2e decode diff %.2e min margin %.3f sizes %s"
          % (name, seed, prompt, greedy, path_diff, dec_diff, min(margins), sizes))
    print("   sensitivity:", reference["checks"]["last_prefill_max_abs_diff_if_wrong"])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "core", "src", "test", "resources", "fixtures"))
    ap.add_argument("--only", default=",".join(FAMILIES))
    a = ap.parse_args()
    torch.set_num_threads(1)  # deterministic summation order
    for name in a.only.split(","):
        make(name, os.path.normpath(a.out))


if __name__ == "__main__":
    main()
