#!/usr/bin/python3
"""Independent float32 reference forward passes for three Hugging Face MoE families.

    MixtralForCausalLM      (model_type "mixtral")
    Qwen2MoeForCausalLM     (model_type "qwen2_moe")
    Qwen3MoeForCausalLM     (model_type "qwen3_moe")

Written from the semantics of transformers' modeling_mixtral.py, modeling_qwen2_moe.py
and modeling_qwen3_moe.py, but self-contained: it needs only torch (Debian's
python3-torch 1.13 works) and reads HF config.json + model.safetensors with HF tensor
names. It is a test tool for producing reference logits, never a runtime dependency.

One short function or class per concept, each with its shapes documented:
    rms_norm, Rope, Attention (full causal pass and one-token cached step),
    Expert (SwiGLU MLP), Gate, MoE, Block, Transformer.

    /usr/bin/python3 tools/reference/gqa_moe_reference.py --selftest
    /usr/bin/python3 tools/reference/gqa_moe_reference.py --model DIR --ids 1,5,7
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

torch.set_grad_enabled(False)

# ----------------------------------------------------------------------------------
# safetensors: 8-byte LE header length, JSON header {name: {dtype, shape, data_offsets}}
# (+ optional "__metadata__"), header padded with spaces to a multiple of 8, then raw
# little-endian data; tensors laid out in name order.
# ----------------------------------------------------------------------------------
_ST_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
              "I64": torch.int64, "I32": torch.int32}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}
_SIZES = {"F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4}


def save_safetensors(tensors, path, metadata=None):
    """tensors: {name: torch.Tensor}; written sorted by name."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        dtype = _ST_NAMES[t.dtype]
        if t.dtype in (torch.bfloat16, torch.float16):
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Returns {name: torch.Tensor} (dtype as stored)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dt = info["dtype"]
        count = (end - start) // _SIZES[dt]
        assert count == math.prod(info["shape"]), name
        buf = bytearray(data[base + start:base + end])
        if dt in ("BF16", "F16"):
            t = torch.frombuffer(buf, dtype=torch.int16).view(_ST_DTYPES[dt])
        else:
            t = torch.frombuffer(buf, dtype=_ST_DTYPES[dt])
        out[name] = t.reshape(info["shape"]).clone()
    return out


# ----------------------------------------------------------------------------------
# Config: the HF config.json fields per model_type, with HF's defaults.
# ----------------------------------------------------------------------------------
class Config:
    """Normalised view of an HF config.json for mixtral / qwen2_moe / qwen3_moe."""

    def __init__(self, d):
        self.raw = d
        self.model_type = d["model_type"]
        if self.model_type not in ("mixtral", "qwen2_moe", "qwen3_moe"):
            raise ValueError("unsupported model_type " + self.model_type)
        g = d.get
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.intermediate_size = d["intermediate_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_attention_heads = d["num_attention_heads"]
        self.num_key_value_heads = g("num_key_value_heads") or self.num_attention_heads
        # getattr(config, "head_dim", None) or hidden_size // num_attention_heads
        self.head_dim = g("head_dim") or self.hidden_size // self.num_attention_heads
        self.rms_norm_eps = g("rms_norm_eps", 1e-6 if self.model_type != "mixtral" else 1e-5)
        self.rope_theta = float(g("rope_theta", 1e6 if self.model_type == "mixtral" else 10000.0))
        self.hidden_act = g("hidden_act", "silu")
        self.tie_word_embeddings = bool(g("tie_word_embeddings", False))
        self.num_experts_per_tok = d["num_experts_per_tok"]
        rs = g("rope_scaling")
        if rs and (rs.get("rope_type") or rs.get("type")) not in (None, "default"):
            raise NotImplementedError("rope_scaling " + str(rs))
        if self.hidden_act != "silu":
            raise NotImplementedError("hidden_act " + self.hidden_act)
        if self.model_type == "mixtral":
            self.num_experts = d["num_local_experts"]
            self.moe_intermediate_size = self.intermediate_size  # experts use intermediate_size
            self.norm_topk_prob = True                             # Mixtral always renormalises
            self.attn_qkv_bias = False
            self.attn_o_bias = False
            self.qk_norm = False
            self.shared_expert_intermediate_size = 0
            self.sparse_layers = list(range(self.num_hidden_layers))
            self.sliding_window = g("sliding_window")
        else:
            self.num_experts = d["num_experts"]
            self.moe_intermediate_size = d["moe_intermediate_size"]
            self.norm_topk_prob = bool(g("norm_topk_prob", False))
            step = g("decoder_sparse_step", 1)
            mlp_only = g("mlp_only_layers") or []
            # HF: sparse iff layer not in mlp_only_layers and num_experts > 0
            #     and (layer_idx + 1) % decoder_sparse_step == 0
            self.sparse_layers = [i for i in range(self.num_hidden_layers)
                                  if i not in mlp_only and self.num_experts > 0
                                  and (i + 1) % step == 0]
            if g("use_sliding_window", False):
                # HF: only layers >= max_window_layers slide; not needed by any fixture
                raise NotImplementedError("use_sliding_window")
            self.sliding_window = None
            if self.model_type == "qwen2_moe":
                # Qwen2 attention: q/k/v bias always (newer HF: config.qkv_bias, default True)
                self.attn_qkv_bias = bool(g("qkv_bias", True))
                self.attn_o_bias = False
                self.qk_norm = False
                self.shared_expert_intermediate_size = g("shared_expert_intermediate_size", 0)
            else:
                self.attn_qkv_bias = bool(g("attention_bias", False))
                self.attn_o_bias = self.attn_qkv_bias  # Qwen3: o_proj bias=attention_bias too
                self.qk_norm = True
                self.shared_expert_intermediate_size = 0
        assert self.num_attention_heads % self.num_key_value_heads == 0

    @staticmethod
    def load(path):
        with open(path) as f:
            return Config(json.load(f))


def rms_norm(x, weight, eps):
    """x: [..., D] -> [..., D]; HF LlamaRMSNorm: w * (x * rsqrt(mean(x^2) + eps)), in f32."""
    x = x.float()
    return weight.float() * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


# ----------------------------------------------------------------------------------
# RoPE
# ----------------------------------------------------------------------------------
class Rope:
    """cos/sin tables for head_dim d; 'half' = HF rotate_half (pairs i, i+d/2),
    'interleaved' = pairs (2i, 2i+1) (DeepSeek/GPT-J style; only for self-tests)."""

    def __init__(self, head_dim, theta, style="half"):
        assert style in ("half", "interleaved")
        self.d, self.style = head_dim, style
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))

    def apply(self, x, positions):
        """x: [T, heads, d]; positions: [T] int -> [T, heads, d]."""
        freqs = positions.float()[:, None] * self.inv_freq[None, :]     # [T, d/2]
        if self.style == "half":
            emb = torch.cat((freqs, freqs), dim=-1)                       # [T, d]
            cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
            x1, x2 = x[..., : self.d // 2], x[..., self.d // 2:]
            return x * cos + torch.cat((-x2, x1), dim=-1) * sin
        cos, sin = freqs.cos()[:, None, :], freqs.sin()[:, None, :]      # [T, 1, d/2]
        xe, xo = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = xe * cos - xo * sin
        out[..., 1::2] = xe * sin + xo * cos
        return out


def linear(x, w, b=None):
    """x: [T, in], w: [out, in], b: [out] -> [T, out]."""
    y = x @ w.t()
    return y + b if b is not None else y


# ----------------------------------------------------------------------------------
# Attention (GQA)
# ----------------------------------------------------------------------------------
class Attention:
    """q/k/v/o projections, optional q/k/v bias, optional per-head q/k RMSNorm before RoPE,
    rotary embedding, causal softmax attention scaled by head_dim**-0.5, GQA (each KV head
    serves num_attention_heads / num_key_value_heads consecutive query heads)."""

    def __init__(self, cfg, w, prefix, rope):
        self.cfg, self.rope = cfg, rope
        self.nh, self.nkv, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.wq, self.wk = w[prefix + "q_proj.weight"], w[prefix + "k_proj.weight"]
        self.wv, self.wo = w[prefix + "v_proj.weight"], w[prefix + "o_proj.weight"]
        qkvb = cfg.attn_qkv_bias
        self.bq = w[prefix + "q_proj.bias"] if qkvb else None
        self.bk = w[prefix + "k_proj.bias"] if qkvb else None
        self.bv = w[prefix + "v_proj.bias"] if qkvb else None
        self.bo = w[prefix + "o_proj.bias"] if cfg.attn_o_bias else None
        self.q_norm = w[prefix + "q_norm.weight"] if cfg.qk_norm else None
        self.k_norm = w[prefix + "k_norm.weight"] if cfg.qk_norm else None
        self.scale = self.hd ** -0.5

    def qkv(self, x, positions):
        """x: [T, H] -> q [T, nh, hd], k [T, nkv, hd], v [T, nkv, hd] (RoPE applied)."""
        T = x.shape[0]
        q = linear(x, self.wq, self.bq).view(T, self.nh, self.hd)
        k = linear(x, self.wk, self.bk).view(T, self.nkv, self.hd)
        v = linear(x, self.wv, self.bv).view(T, self.nkv, self.hd)
        if self.q_norm is not None:
            q = rms_norm(q, self.q_norm, self.cfg.rms_norm_eps)
            k = rms_norm(k, self.k_norm, self.cfg.rms_norm_eps)
        return self.rope.apply(q, positions), self.rope.apply(k, positions), v

    def forward_full(self, x, positions):
        """Whole sequence at once with a causal mask (HF eager path with repeat_kv).
        x: [T, H] -> [T, H]."""
        T = x.shape[0]
        q, k, v = self.qkv(x, positions)
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)                 # [T, nh, hd]
        v = v.repeat_interleave(rep, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) * self.scale           # [nh, T, T]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        if self.cfg.sliding_window:
            idx = torch.arange(T)
            mask &= (idx[:, None] - idx[None, :]) < self.cfg.sliding_window
        scores = scores.masked_fill(~mask, float("-inf"))
        p = torch.softmax(scores, dim=-1)
        out = torch.einsum("hts,shd->thd", p, v).reshape(T, self.nh * self.hd)
        return linear(out, self.wo, self.bo)

    def forward_step(self, x, pos, cache):
        """One token against an explicit KV cache, one query head at a time (independent
        of forward_full's vectorised path). x: [1, H]; cache: dict with 'k','v' lists of
        [nkv, hd] -> [1, H]."""
        q, k, v = self.qkv(x, torch.tensor([pos]))
        cache["k"].append(k[0])
        cache["v"].append(v[0])
        K = torch.stack(cache["k"])                            # [S, nkv, hd]
        V = torch.stack(cache["v"])
        S = K.shape[0]
        lo = 0 if not self.cfg.sliding_window else max(0, S - self.cfg.sliding_window)
        heads = []
        for h in range(self.nh):
            g = h // (self.nh // self.nkv)
            s = (K[lo:, g, :] @ q[0, h, :]) * self.scale        # [S']
            p = torch.softmax(s, dim=-1)
            heads.append(p @ V[lo:, g, :])                      # [hd]
        return linear(torch.cat(heads)[None, :], self.wo, self.bo)


# ----------------------------------------------------------------------------------
# MLPs and MoE
# ----------------------------------------------------------------------------------
class Expert:
    """SwiGLU MLP: down(silu(gate(x)) * up(x)). x: [T, H] -> [T, H].
    Mixtral names: w1 = gate, w3 = up, w2 = down."""

    def __init__(self, w_gate, w_up, w_down):
        self.w_gate, self.w_up, self.w_down = w_gate, w_up, w_down

    def forward(self, x):
        return linear(torch.nn.functional.silu(linear(x, self.w_gate)) * linear(x, self.w_up), self.w_down)


class Gate:
    """Router: softmax over ALL experts (f32), top-k, optionally renormalise the top-k
    weights to sum 1. x: [T, H] -> weights [T, k], indices [T, k]."""

    def __init__(self, weight, top_k, renormalise):
        self.weight, self.top_k, self.renormalise = weight, top_k, renormalise

    def forward(self, x):
        probs = torch.softmax(linear(x, self.weight).float(), dim=-1)
        w, idx = torch.topk(probs, self.top_k, dim=-1)
        if self.renormalise:
            w = w / w.sum(dim=-1, keepdim=True)
        return w, idx


class MoE:
    """Sparse MoE block: sum_k w_k * expert_{idx_k}(x) [+ sigmoid(shared_gate . x) * shared(x)].
    x: [T, H] -> [T, H]."""

    def __init__(self, gate, experts, shared=None, shared_gate=None):
        self.gate, self.experts, self.shared, self.shared_gate = gate, experts, shared, shared_gate

    def forward(self, x):
        w, idx = self.gate.forward(x)
        out = torch.zeros_like(x)
        for t in range(x.shape[0]):
            for j in range(idx.shape[1]):
                out[t] += w[t, j] * self.experts[int(idx[t, j])].forward(x[t:t + 1])[0]
        if self.shared is not None:
            out = out + torch.sigmoid(linear(x, self.shared_gate)) * self.shared.forward(x)
        return out


def build_mlp(cfg, w, layer):
    """The FFN of layer `layer`: MoE for sparse layers, else a dense SwiGLU MLP."""
    p = "model.layers.%d." % layer
    if cfg.model_type == "mixtral":
        q = p + "block_sparse_moe."
        experts = [Expert(w[q + "experts.%d.w1.weight" % e], w[q + "experts.%d.w3.weight" % e],
                          w[q + "experts.%d.w2.weight" % e]) for e in range(cfg.num_experts)]
        return MoE(Gate(w[q + "gate.weight"], cfg.num_experts_per_tok, True), experts)
    q = p + "mlp."
    if layer not in cfg.sparse_layers:
        return Expert(w[q + "gate_proj.weight"], w[q + "up_proj.weight"], w[q + "down_proj.weight"])
    experts = [Expert(w[q + "experts.%d.gate_proj.weight" % e], w[q + "experts.%d.up_proj.weight" % e],
                      w[q + "experts.%d.down_proj.weight" % e]) for e in range(cfg.num_experts)]
    gate = Gate(w[q + "gate.weight"], cfg.num_experts_per_tok, cfg.norm_topk_prob)
    shared = shared_gate = None
    if cfg.model_type == "qwen2_moe" and cfg.shared_expert_intermediate_size > 0:
        shared = Expert(w[q + "shared_expert.gate_proj.weight"], w[q + "shared_expert.up_proj.weight"],
                        w[q + "shared_expert.down_proj.weight"])
        shared_gate = w[q + "shared_expert_gate.weight"]                   # [1, H]
    return MoE(gate, experts, shared, shared_gate)


class Block:
    """Pre-norm decoder layer: h = x + attn(norm1(x)); out = h + mlp(norm2(h))."""

    def __init__(self, cfg, w, layer, rope):
        p = "model.layers.%d." % layer
        self.cfg = cfg
        self.attn = Attention(cfg, w, p + "self_attn.", rope)
        self.mlp = build_mlp(cfg, w, layer)
        self.norm1 = w[p + "input_layernorm.weight"]
        self.norm2 = w[p + "post_attention_layernorm.weight"]

    def forward(self, x, positions=None, pos=None, cache=None):
        """Either a full causal pass (positions: [T]) or one cached step (pos, cache)."""
        n = rms_norm(x, self.norm1, self.cfg.rms_norm_eps)
        a = self.attn.forward_full(n, positions) if cache is None else self.attn.forward_step(n, pos, cache)
        h = x + a
        return h + self.mlp.forward(rms_norm(h, self.norm2, self.cfg.rms_norm_eps))


class Transformer:
    """embed -> Blocks -> model.norm -> lm_head."""

    def __init__(self, cfg, weights, rope_style="half"):
        self.cfg = cfg
        w = {k: v.float() for k, v in weights.items()}
        self.embed = w["model.embed_tokens.weight"]
        self.norm = w["model.norm.weight"]
        self.lm_head = self.embed if (cfg.tie_word_embeddings and "lm_head.weight" not in w) else w["lm_head.weight"]
        rope = Rope(cfg.head_dim, cfg.rope_theta, rope_style)
        self.layers = [Block(cfg, w, i, rope) for i in range(cfg.num_hidden_layers)]

    def _logits(self, x):
        return linear(rms_norm(x, self.norm, self.cfg.rms_norm_eps), self.lm_head)

    def forward_full(self, ids):
        """ids: list[int] (positions 0..T-1) -> logits [T, V] from one causal pass."""
        x = self.embed[torch.tensor(ids)]
        pos = torch.arange(len(ids))
        for layer in self.layers:
            x = layer.forward(x, positions=pos)
        return self._logits(x)

    def new_cache(self):
        return [{"k": [], "v": []} for _ in self.layers]

    def forward_step(self, token, pos, cache):
        """One token at position pos using cache (from new_cache) -> logits [V]."""
        x = self.embed[torch.tensor([token])]
        for layer, c in zip(self.layers, cache):
            x = layer.forward(x, pos=pos, cache=c)
        return self._logits(x)[0]


def load_model(model_dir, rope_style="half"):
    cfg = Config.load(os.path.join(model_dir, "config.json"))
    return Transformer(cfg, load_safetensors(os.path.join(model_dir, "model.safetensors")), rope_style)


# ----------------------------------------------------------------------------------
# Self-tests of the reference itself
# ----------------------------------------------------------------------------------
def _tiny(model_type, seed=0):
    """A small random config + weights for self-tests (not the fixtures)."""
    d = {"model_type": model_type, "vocab_size": 32, "hidden_size": 16, "intermediate_size": 12,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "num_experts_per_tok": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
         "tie_word_embeddings": False}
    if model_type == "mixtral":
        d["num_local_experts"] = 4
    else:
        d.update(num_experts=4, moe_intermediate_size=8, decoder_sparse_step=1,
                 mlp_only_layers=[0] if model_type == "qwen2_moe" else [])
        if model_type == "qwen2_moe":
            d.update(shared_expert_intermediate_size=10, norm_topk_prob=False)
        else:
            d.update(head_dim=8, norm_topk_prob=True, attention_bias=False)
    cfg = Config(d)
    return cfg, random_weights(cfg, torch.Generator().manual_seed(seed))


def weight_shapes(cfg):
    """{HF tensor name: shape} for cfg."""
    H, V, hd = cfg.hidden_size, cfg.vocab_size, cfg.head_dim
    s = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,), "lm_head.weight": (V, H)}
    for i in range(cfg.num_hidden_layers):
        p = "model.layers.%d." % i
        s[p + "input_layernorm.weight"] = (H,)
        s[p + "post_attention_layernorm.weight"] = (H,)
        a = p + "self_attn."
        s[a + "q_proj.weight"] = (cfg.num_attention_heads * hd, H)
        s[a + "k_proj.weight"] = (cfg.num_key_value_heads * hd, H)
        s[a + "v_proj.weight"] = (cfg.num_key_value_heads * hd, H)
        s[a + "o_proj.weight"] = (H, cfg.num_attention_heads * hd)
        if cfg.attn_qkv_bias:
            s[a + "q_proj.bias"] = (cfg.num_attention_heads * hd,)
            s[a + "k_proj.bias"] = (cfg.num_key_value_heads * hd,)
            s[a + "v_proj.bias"] = (cfg.num_key_value_heads * hd,)
        if cfg.attn_o_bias:
            s[a + "o_proj.bias"] = (H,)
        if cfg.qk_norm:
            s[a + "q_norm.weight"] = (hd,)
            s[a + "k_norm.weight"] = (hd,)
        E, I = cfg.num_experts, cfg.moe_intermediate_size
        if cfg.model_type == "mixtral":
            m = p + "block_sparse_moe."
            s[m + "gate.weight"] = (E, H)
            for e in range(E):
                s[m + "experts.%d.w1.weight" % e] = (I, H)
                s[m + "experts.%d.w3.weight" % e] = (I, H)
                s[m + "experts.%d.w2.weight" % e] = (H, I)
            continue
        m = p + "mlp."
        if i not in cfg.sparse_layers:
            I = cfg.intermediate_size
            s[m + "gate_proj.weight"], s[m + "up_proj.weight"], s[m + "down_proj.weight"] = (I, H), (I, H), (H, I)
            continue
        s[m + "gate.weight"] = (E, H)
        for e in range(E):
            s[m + "experts.%d.gate_proj.weight" % e] = (I, H)
            s[m + "experts.%d.up_proj.weight" % e] = (I, H)
            s[m + "experts.%d.down_proj.weight" % e] = (H, I)
        if cfg.model_type == "qwen2_moe" and cfg.shared_expert_intermediate_size > 0:
            J = cfg.shared_expert_intermediate_size
            s[m + "shared_expert.gate_proj.weight"] = (J, H)
            s[m + "shared_expert.up_proj.weight"] = (J, H)
            s[m + "shared_expert.down_proj.weight"] = (H, J)
            s[m + "shared_expert_gate.weight"] = (1, H)
    return s


def random_weights(cfg, gen, logit_std=3.0, router_std=1.5, bias_std=0.5, shared_gate_std=2.0):
    """Random weights keeping activations O(1): linear weights N(0, 1/fan_in), norm weights
    1 + N(0, 0.2^2), embeddings N(0, 1), lm_head scaled so logits have std ~logit_std,
    router logits std ~router_std. All values rounded to bf16-representable float32."""
    out = {}
    for name, shape in sorted(weight_shapes(cfg).items()):
        if len(shape) == 1:
            if name.endswith("bias"):
                t = torch.randn(shape, generator=gen) * bias_std
            else:
                t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        else:
            fan_in = shape[1]
            t = torch.randn(shape, generator=gen)
            if name == "model.embed_tokens.weight":
                pass
            elif name == "lm_head.weight":
                t = t * (logit_std / math.sqrt(fan_in))
            elif name.endswith("gate.weight") and "experts" not in name and "shared_expert_gate" not in name:
                t = t * (router_std / math.sqrt(fan_in))             # router
            elif name.endswith("shared_expert_gate.weight"):
                t = t * (shared_gate_std / math.sqrt(fan_in))
            else:
                t = t / math.sqrt(fan_in)
        out[name] = t.to(torch.bfloat16).float()
    return out


def selftest():
    import tempfile
    fails = []

    def check(cond, msg):
        print(("ok   " if cond else "FAIL ") + msg)
        if not cond:
            fails.append(msg)

    ids = [1, 7, 3, 9, 4, 11, 2, 5]
    for mt in ("mixtral", "qwen2_moe", "qwen3_moe"):
        cfg, w = _tiny(mt)
        m = Transformer(cfg, w)
        full = m.forward_full(ids)
        cache = m.new_cache()
        inc = torch.stack([m.forward_step(t, i, cache) for i, t in enumerate(ids)])
        d = (full - inc).abs().max().item()
        check(d < 1e-5, "%s: full causal pass == incremental KV-cache pass (max diff %.2e)" % (mt, d))
        # causality: changing a later token does not change earlier logits
        full2 = m.forward_full(ids[:-1] + [ids[-1] + 1])
        check((full2[:-1] - full[:-1]).abs().max().item() == 0.0 and
              (full2[-1] - full[-1]).abs().max().item() > 1e-3, "%s: causal mask" % mt)
        # rotate-half vs interleaved RoPE give different outputs
        d = (Transformer(cfg, w, "interleaved").forward_full(ids) - full).abs().max().item()
        check(d > 1e-2, "%s: rotate-half vs interleaved RoPE differ (max diff %.3f)" % (mt, d))
        # position 0 is unrotated: both conventions agree on the first token
        d0 = (Transformer(cfg, w, "interleaved").forward_full(ids[:1]) - full[:1]).abs().max().item()
        check(d0 < 1e-5, "%s: RoPE conventions agree at position 0 (%.2e)" % (mt, d0))
        # gate weights matter: zeroing the router (uniform softmax, top-k by index) changes output
        wz = dict(w)
        for k in wz:
            if k.endswith("block_sparse_moe.gate.weight") or k.endswith("mlp.gate.weight"):
                wz[k] = torch.zeros_like(wz[k])
        d = (Transformer(cfg, wz).forward_full(ids) - full).abs().max().item()
        check(d > 1e-2, "%s: zeroing the router changes output (max diff %.3f)" % (mt, d))
        # renormalisation rule matters
        cfg2 = Config(dict(cfg.raw))
        cfg2.norm_topk_prob = not cfg.norm_topk_prob
        if mt != "mixtral":
            d = (Transformer(cfg2, w).forward_full(ids) - full).abs().max().item()
            check(d > 1e-2, "%s: norm_topk_prob flip changes output (max diff %.3f)" % (mt, d))
        # Gate semantics on one vector
        x = torch.randn(3, cfg.hidden_size, generator=torch.Generator().manual_seed(5))
        gw = w[[k for k in w if k.endswith("gate.weight") and ("mlp.gate" in k or "block_sparse_moe.gate" in k)][0]]
        wts, idx = Gate(gw, cfg.num_experts_per_tok, cfg.norm_topk_prob).forward(x)
        p = torch.softmax(x @ gw.t(), -1)
        ref = p.gather(1, idx)
        if cfg.norm_topk_prob:
            ref = ref / ref.sum(-1, keepdim=True)
        check(torch.allclose(wts, ref) and bool((p.gather(1, idx).min(-1).values >=
                                                p.topk(cfg.num_experts_per_tok).values.min(-1).values).all()),
              "%s: gate = softmax over all experts, top-k%s" % (mt, ", renormalised" if cfg.norm_topk_prob else ""))
        if mt == "qwen2_moe":
            # shared expert scaled by sigmoid(shared_expert_gate . x): zero gate -> 0.5 x shared
            wg = dict(w)
            for k in wg:
                if k.endswith("shared_expert_gate.weight"):
                    wg[k] = torch.zeros_like(wg[k])
            mlp = build_mlp(cfg, wg, 1)
            xs = torch.randn(2, cfg.hidden_size)
            routed = MoE(mlp.gate, mlp.experts).forward(xs)
            check(torch.allclose(mlp.forward(xs), routed + 0.5 * mlp.shared.forward(xs), atol=1e-6),
                  "qwen2_moe: zero shared_expert_gate scales the shared expert by 0.5")
            check(isinstance(build_mlp(cfg, w, 0), Expert) and isinstance(build_mlp(cfg, w, 1), MoE),
                  "qwen2_moe: mlp_only_layers=[0] makes layer 0 dense")
            wb = dict(w)
            for k in wb:
                if k.endswith("_proj.bias"):
                    wb[k] = torch.zeros_like(wb[k])
            d = (Transformer(cfg, wb).forward_full(ids) - full).abs().max().item()
            check(d > 1e-2, "qwen2_moe: q/k/v biases matter (max diff %.3f)" % d)
        if mt == "qwen3_moe":
            wn = dict(w)
            for k in wn:
                if k.endswith("q_norm.weight") or k.endswith("k_norm.weight"):
                    wn[k] = wn[k] * 2.0
            d = (Transformer(cfg, wn).forward_full(ids) - full).abs().max().item()
            check(d > 1e-2, "qwen3_moe: q/k norm weights matter (max diff %.3f)" % d)
            check(cfg.head_dim != cfg.hidden_size // cfg.num_attention_heads,
                  "qwen3_moe: explicit head_dim differs from hidden/heads")
    # GQA: a KV-head-shared model equals an MHA model with K/V weights duplicated per group
    cfg, w = _tiny("mixtral")
    d = dict(cfg.raw)
    d["num_key_value_heads"] = d["num_attention_heads"]
    cfg_mha = Config(d)
    w_mha = dict(w)
    rep = cfg.num_attention_heads // cfg.num_key_value_heads
    for i in range(cfg.num_hidden_layers):
        for n in ("k_proj", "v_proj"):
            k = "model.layers.%d.self_attn.%s.weight" % (i, n)
            w_mha[k] = w[k].view(cfg.num_key_value_heads, cfg.head_dim, -1).repeat_interleave(rep, 0) \
                .reshape(cfg.num_attention_heads * cfg.head_dim, -1)
    dd = (Transformer(cfg, w).forward_full(ids) - Transformer(cfg_mha, w_mha).forward_full(ids)).abs().max().item()
    check(dd < 1e-5, "GQA query head h uses KV head h // (heads/kv_heads) (max diff %.2e)" % dd)
    # RMSNorm formula
    x = torch.randn(3, 16)
    wt = torch.randn(16)
    check(torch.allclose(rms_norm(x, wt, 1e-6), wt * x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6)),
          "rms_norm formula")
    # safetensors round trip (F32 and BF16), header alignment and name order
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "t.safetensors")
        ts = {"b": torch.randn(3, 5), "a": torch.randn(7).to(torch.bfloat16), "c.x": torch.arange(4).float()}
        save_safetensors(ts, p, {"format": "pt"})
        back = load_safetensors(p)
        raw = open(p, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        hdr = json.loads(raw[8:8 + n])
        offs = [hdr[k]["data_offsets"][0] for k in sorted(k for k in hdr if k != "__metadata__")]
        check(all(torch.equal(ts[k], back[k]) and ts[k].dtype == back[k].dtype for k in ts)
              and n % 8 == 0 and offs == sorted(offs), "safetensors round trip")
    print("%d failed" % len(fails) if fails else "all self-tests passed")
    return 1 if fails else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", action="store_true", help="run the reference's own tests")
    ap.add_argument("--model", help="dir with config.json and model.safetensors")
    ap.add_argument("--ids", help="comma-separated prompt token ids")
    ap.add_argument("--steps", type=int, default=4, help="greedy decode steps")
    a = ap.parse_args()
    if a.selftest:
        sys.exit(selftest())
    if not (a.model and a.ids):
        ap.error("--selftest, or --model and --ids")
    m = load_model(a.model)
    ids = [int(t) for t in a.ids.split(",")]
    cache = m.new_cache()
    for i, t in enumerate(ids):
        logits = m.forward_step(t, i, cache)
    out = []
    for s in range(a.steps):
        nxt = int(logits.argmax())
        out.append(nxt)
        logits = m.forward_step(nxt, len(ids) + s, cache)
    print(json.dumps({"prompt_ids": ids, "greedy_tokens": out}))


if __name__ == "__main__":
    main()
