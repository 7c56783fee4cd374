#!/usr/bin/python3
"""Trains ExpertMesh's default model: a small DeepSeek-V3-architecture MoE, on the CPU, seeded.

    /usr/bin/python3 tools/train/train.py --corpus build/corpus --tokenizer build/tokenizer --out build/model

Every V3 feature is present: MLA with q_lora, a sigmoid gate with the correction bias (trained the V3 way,
"auxiliary-loss-free": after each step the bias of an overloaded expert goes down, an idle one's goes up),
expert groups with group-limited top-k, a shared expert, a first dense layer and a YaRN rope config.
The forward pass is the one of tools/reference/deepseek_v3_reference.py (DeepSeek's model.py) batched for
training, under the Hugging Face tensor names; after training, the exported BF16 checkpoint is scored again
with that reference code, and the two losses must agree, so the Java engine (tested against the same
reference) computes what was trained.

Writes config.json, model.safetensors (BF16), tokenizer.json, tokenizer_config.json, generation_config.json
and training-log.csv (step, seconds, train loss, held-out loss, held-out bits per byte) into --out.
"""
import argparse
import csv
import json
import math
import os
import random
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, HERE)
import deepseek_v3_reference as ref  # noqa: E402
from bpe import Encoder, SEP  # noqa: E402

BOS, EOS = 0, 1


def model_config(vocab):
    return {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "vocab_size": vocab, "hidden_size": 256, "intermediate_size": 768, "moe_intermediate_size": 192,
        "num_hidden_layers": 6, "first_k_dense_replace": 1, "moe_layer_freq": 1,
        "num_attention_heads": 4, "num_key_value_heads": 4,
        "q_lora_rank": 128, "kv_lora_rank": 64, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
        "n_routed_experts": 16, "num_experts_per_tok": 4, "n_shared_experts": 1, "n_group": 4, "topk_group": 2,
        "routed_scaling_factor": 2.5, "topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": True,
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "max_position_embeddings": 8192,
        "rope_scaling": {"type": "yarn", "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
        "bos_token_id": BOS, "eos_token_id": EOS, "tie_word_embeddings": False, "attention_bias": False,
        "torch_dtype": "bfloat16",
    }


class Model(nn.Module):
    """Parameters under their Hugging Face names ('.' written as '|' because nn.ParameterDict forbids dots)."""

    def __init__(self, cfg, seed):
        super().__init__()
        self.a = ref.ModelArgs(cfg)
        a = self.a
        g = torch.Generator().manual_seed(seed)
        p = {}
        std = 0.02
        out_std = std / math.sqrt(2 * a.n_layers)

        def normal(*shape, s=std):
            return torch.randn(*shape, generator=g) * s

        p["model.embed_tokens.weight"] = normal(a.vocab_size, a.dim)
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        for i in range(a.n_layers):
            pre = f"model.layers.{i}."
            p[pre + "input_layernorm.weight"] = torch.ones(a.dim)
            p[pre + "post_attention_layernorm.weight"] = torch.ones(a.dim)
            at = pre + "self_attn."
            p[at + "q_a_proj.weight"] = normal(a.q_lora_rank, a.dim)
            p[at + "q_a_layernorm.weight"] = torch.ones(a.q_lora_rank)
            p[at + "q_b_proj.weight"] = normal(a.n_heads * qk, a.q_lora_rank)
            p[at + "kv_a_proj_with_mqa.weight"] = normal(a.kv_lora_rank + a.qk_rope_head_dim, a.dim)
            p[at + "kv_a_layernorm.weight"] = torch.ones(a.kv_lora_rank)
            p[at + "kv_b_proj.weight"] = normal(a.n_heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank)
            p[at + "o_proj.weight"] = normal(a.dim, a.n_heads * a.v_head_dim, s=out_std)
            mlp = pre + "mlp."
            if i < a.n_dense_layers:
                self._mlp(p, mlp, a.dim, a.inter_dim, normal, out_std)
            else:
                p[mlp + "gate.weight"] = normal(a.n_routed_experts, a.dim)
                for e in range(a.n_routed_experts):
                    self._mlp(p, f"{mlp}experts.{e}.", a.dim, a.moe_inter_dim, normal, out_std)
                self._mlp(p, mlp + "shared_experts.", a.dim, a.moe_inter_dim * a.n_shared_experts, normal, out_std)
        p["model.norm.weight"] = torch.ones(a.dim)
        p["lm_head.weight"] = normal(a.vocab_size, a.dim)
        self.params = nn.ParameterDict({k.replace(".", "|"): nn.Parameter(v) for k, v in p.items()})
        # The correction bias is not trained by gradients: it is a buffer moved by the balancing rule.
        self.bias = {i: torch.zeros(a.n_routed_experts) for i in range(a.n_dense_layers, a.n_layers)}
        self.load = {i: torch.zeros(a.n_routed_experts) for i in self.bias}
        self.freqs_cis = ref.precompute_freqs_cis(a)
        self.softmax_scale = qk ** -0.5
        if a.yarn_active:
            m = 0.1 * a.mscale * math.log(a.rope_factor) + 1.0
            self.softmax_scale *= m * m

    @staticmethod
    def _mlp(p, pre, dim, inter, normal, out_std):
        p[pre + "gate_proj.weight"] = normal(inter, dim)
        p[pre + "up_proj.weight"] = normal(inter, dim)
        p[pre + "down_proj.weight"] = normal(dim, inter, s=out_std)

    def w(self, name):
        return self.params[name.replace(".", "|")]

    def named_hf(self):
        return {k.replace("|", "."): v for k, v in self.params.items()}

    def mlp(self, x, pre):
        return F.linear(F.silu(F.linear(x, self.w(pre + "gate_proj.weight"))) * F.linear(x, self.w(pre + "up_proj.weight")),
                        self.w(pre + "down_proj.weight"))

    def attention(self, x, pre, freqs, mask):
        a = self.a
        b, s, _ = x.shape
        q = F.linear(ref.rms_norm(F.linear(x, self.w(pre + "q_a_proj.weight")), self.w(pre + "q_a_layernorm.weight"),
                                  a.norm_eps), self.w(pre + "q_b_proj.weight"))
        q = q.view(b, s, a.n_heads, a.qk_nope_head_dim + a.qk_rope_head_dim)
        q_nope, q_pe = torch.split(q, [a.qk_nope_head_dim, a.qk_rope_head_dim], dim=-1)
        q_pe = ref.apply_rotary_emb(q_pe, freqs)
        kv = F.linear(x, self.w(pre + "kv_a_proj_with_mqa.weight"))
        kv, k_pe = torch.split(kv, [a.kv_lora_rank, a.qk_rope_head_dim], dim=-1)
        k_pe = ref.apply_rotary_emb(k_pe.unsqueeze(2), freqs)
        kv = F.linear(ref.rms_norm(kv, self.w(pre + "kv_a_layernorm.weight"), a.norm_eps), self.w(pre + "kv_b_proj.weight"))
        kv = kv.view(b, s, a.n_heads, a.qk_nope_head_dim + a.v_head_dim)
        k_nope, v = torch.split(kv, [a.qk_nope_head_dim, a.v_head_dim], dim=-1)
        qf = torch.cat([q_nope, q_pe], dim=-1).transpose(1, 2)                       # (b, h, s, d)
        kf = torch.cat([k_nope, k_pe.expand(-1, -1, a.n_heads, -1)], dim=-1).transpose(1, 2)
        scores = (qf @ kf.transpose(-1, -2)) * self.softmax_scale + mask
        o = scores.softmax(dim=-1) @ v.transpose(1, 2)                               # (b, h, s, dv)
        return F.linear(o.transpose(1, 2).reshape(b, s, -1), self.w(pre + "o_proj.weight"))

    def moe(self, x, layer, pre):
        a = self.a
        shape = x.shape
        x = x.reshape(-1, a.dim)
        n = x.size(0)
        scores = F.linear(x, self.w(pre + "gate.weight")).sigmoid()
        with torch.no_grad():
            biased = scores + self.bias[layer]
            grouped = biased.view(n, a.n_expert_groups, -1)
            group_scores = grouped.topk(2, dim=-1)[0].sum(dim=-1)
            gidx = group_scores.topk(a.n_limited_groups, dim=-1)[1]
            gmask = torch.ones(n, a.n_expert_groups, dtype=torch.bool).scatter_(1, gidx, False)
            biased = grouped.masked_fill(gmask.unsqueeze(-1), float("-inf")).flatten(1)
            indices = biased.topk(a.n_activated_experts, dim=-1)[1]
            self.load[layer] += torch.bincount(indices.flatten(), minlength=a.n_routed_experts).float()
        weights = scores.gather(1, indices)
        weights = weights / weights.sum(dim=-1, keepdim=True) * a.route_scale
        y = torch.zeros(x.shape, dtype=torch.float32)
        flat = indices.flatten()
        order = flat.argsort()
        counts = torch.bincount(flat, minlength=a.n_routed_experts).tolist()
        token_of = order // a.n_activated_experts
        wflat = weights.flatten()[order]
        start = 0
        for e, c in enumerate(counts):
            if c:
                t = token_of[start:start + c]
                y.index_add_(0, t, (self.mlp(x[t], f"{pre}experts.{e}.") * wflat[start:start + c, None]).to(y.dtype))
            start += c
        y = y + self.mlp(x, pre + "shared_experts.")
        return y.view(shape)

    def forward(self, tokens):
        a = self.a
        s = tokens.size(1)
        h = F.embedding(tokens, self.w("model.embed_tokens.weight"))
        freqs = self.freqs_cis[:s]
        mask = torch.full((s, s), float("-inf")).triu_(1)
        for i in range(a.n_layers):
            pre = f"model.layers.{i}."
            h = h + self.attention(ref.rms_norm(h, self.w(pre + "input_layernorm.weight"), a.norm_eps),
                                   pre + "self_attn.", freqs, mask)
            x = ref.rms_norm(h, self.w(pre + "post_attention_layernorm.weight"), a.norm_eps)
            h = h + (self.mlp(x, pre + "mlp.") if i < a.n_dense_layers else self.moe(x, i, pre + "mlp."))
        return F.linear(ref.rms_norm(h, self.w("model.norm.weight"), a.norm_eps), self.w("lm_head.weight"))

    @torch.no_grad()
    def balance(self, rate):
        """DeepSeek-V3's auxiliary-loss-free balancing: nudge each expert's bias toward the mean load."""
        for i, load in self.load.items():
            self.bias[i] += rate * torch.sign(load.mean() - load)
            load.zero_()


def token_stream(path, enc):
    with open(path, encoding="utf-8") as f:
        docs = f.read().split("\n" + SEP + "\n")
    ids = []
    nbytes = 0
    for d in docs:
        ids.append(BOS)
        ids.extend(enc.encode(d))
        ids.append(EOS)
        nbytes += len(d.encode("utf-8"))
    return np.array(ids, dtype=np.int32), nbytes


def windows(stream, count, length, rng):
    starts = [rng.randrange(0, len(stream) - length - 1) for _ in range(count)]
    return torch.from_numpy(np.stack([stream[s:s + length + 1] for s in starts]).astype(np.int64))


@torch.no_grad()
def evaluate(model, batches):
    total, n = 0.0, 0
    for xb in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(xb[:, :-1]).float()
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), xb[:, 1:].reshape(-1), reduction="sum").item()
        n += xb[:, 1:].numel()
    for load in model.load.values():
        load.zero_()
    return total / n


def export(model, cfg, tokenizer_dir, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tensors = {}
    for name, p in model.named_hf().items():
        # Norm weights stay F32 like DeepSeek's checkpoints keep small vectors; matrices go to BF16 (rounded).
        t = p.detach().float()
        if t.dim() == 2:
            tensors[name] = ("BF16", bf16_round(t))
        else:
            tensors[name] = ("F32", t)
    for i, b in model.bias.items():
        tensors[f"model.layers.{i}.mlp.gate.e_score_correction_bias"] = ("F32", b.clone())
    ref.save_safetensors(os.path.join(out, "model.safetensors"), tensors)
    shutil.copy(os.path.join(tokenizer_dir, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|bos|>", "eos_token": "<|eos|>",
            "add_bos_token": True, "add_eos_token": False, "model_max_length": 8192,
            # The model saw no dialogues: the template lays the conversation out as plain text with a cue.
            "chat_template": "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
                             "{% elif m['role'] == 'user' %}Q: {{ m['content'] }}\n{% else %}A: {{ m['content'] }}"
                             "{{ eos_token }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}A:{% endif %}",
        }, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": BOS, "eos_token_id": EOS, "temperature": 0.7, "top_p": 0.9}, f, indent=2)


def bf16_round(t):
    u = t.contiguous().view(torch.int32)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) & ~0xFFFF
    return rounded.view(torch.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--export-every", type=int, default=500)
    ap.add_argument("--bias-rate", type=float, default=1e-3)
    ap.add_argument("--profile", action="store_true", help="time 5 steps and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    enc = Encoder(os.path.join(args.tokenizer, "tokenizer.json"))
    t0 = time.time()
    train, _ = token_stream(os.path.join(args.corpus, "train.txt"), enc)
    held, held_bytes = token_stream(os.path.join(args.corpus, "heldout.txt"), enc)
    bytes_per_token = held_bytes / (len(held) - 2 * (held == BOS).sum())
    print(f"tokenized in {time.time() - t0:.0f} s: train {len(train)} tokens, held out {len(held)} "
          f"({bytes_per_token:.2f} bytes per text token)", flush=True)
    eval_rng = random.Random(7)
    eval_batches = [windows(held, args.batch, args.seq, eval_rng) for _ in range(4)]

    cfg = model_config(len(enc.vocab))
    model = Model(cfg, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params / 1e6:.2f} M", flush=True)
    decay = [p for n, p in model.params.items() if p.dim() == 2]
    no_decay = [p for n, p in model.params.items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "training-log.csv")
    log = open(log_path, "w", newline="")
    writer = csv.writer(log)
    writer.writerow(["step", "seconds", "train_loss", "heldout_loss", "heldout_bits_per_byte"])
    start = time.time()
    running = None
    for step in range(args.steps):
        xb = windows(train, args.batch, args.seq, rng)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        # BF16 autocast: matrix products in BF16 on the CPU's matrix units (about 6x FP32 here), FP32 master
        # weights and FP32 loss.
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(xb[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.balance(args.bias_rate)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if args.profile and step == 4:
            print(f"{(time.time() - start) / 5:.2f} s per step", flush=True)
            return
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            h = evaluate(model, eval_batches)
            bpb = h / math.log(2) / bytes_per_token
            el = time.time() - start
            writer.writerow([step + 1, f"{el:.0f}", f"{running:.4f}", f"{h:.4f}", f"{bpb:.4f}"])
            log.flush()
            print(f"step {step + 1:5d}  {el:6.0f} s  train {running:.3f}  held-out {h:.3f} "
                  f"({bpb:.3f} bits/byte)  lr {lr_at(step):.2e}", flush=True)
            if (step + 1) % args.export_every == 0:
                export(model, cfg, args.tokenizer, args.out)   # a usable checkpoint while training goes on
    log.close()
    export(model, cfg, args.tokenizer, args.out)
    shutil.move(log_path, os.path.join(args.out, "training-log.csv"))

    # The exported (BF16) checkpoint, scored by the reference code, must give the training forward's loss.
    exported, _, _ = ref.load_model(args.out, "naive")
    xb = eval_batches[0][:2]
    with torch.no_grad():
        for name, p in model.named_hf().items():
            if p.dim() == 2:
                p.copy_(bf16_round(p))
        ours = F.cross_entropy(model(xb[:, :-1]).reshape(-1, cfg["vocab_size"]), xb[:, 1:].reshape(-1)).item()
        theirs = 0.0
        for row in xb:
            logits = exported.forward(row[None, :-1], 0, all_positions=True)[0]
            theirs += F.cross_entropy(logits, row[1:]).item() / len(xb)
    print(f"check: training forward {ours:.4f}, reference forward on the exported checkpoint {theirs:.4f}", flush=True)
    if abs(ours - theirs) > 0.02:
        sys.exit("the exported checkpoint does not compute what was trained")
    print(f"done in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
