#!/usr/bin/python3
"""Reads two llama-perplexity --kl-divergence-base files (base, quantized run) and prints, per token over all scored
tokens: full-vocabulary KL(base||q) (llama.cpp's definition, terms with log p_base > -16) and ExpertMesh's estimator
(base's top-32 tokens + one bucket for the rest; Perplexity.klDivergence), each as mean / p99, plus top-1 agreement."""
import sys, numpy as np
def open_kld(path):
    f = open(path, "rb"); assert f.read(8) == b"_logits_"
    n_ctx, n_vocab, n_chunk = np.frombuffer(f.read(12), dtype=np.int32)
    toks = np.frombuffer(f.read(4 * n_chunk * n_ctx), dtype=np.int32)
    return f, int(n_ctx), int(n_vocab), int(n_chunk), toks
fb, n_ctx, n_vocab, n_chunk, tb = open_kld(sys.argv[1]); fq, c2, v2, k2, tq = open_kld(sys.argv[2])
assert (n_ctx, n_vocab, n_chunk) == (c2, v2, k2) and (tb == tq).all()
nv = 2 * ((n_vocab + 1) // 2) + 4; n_tok = n_ctx - 1 - n_ctx // 2
def chunk(f):
    a = np.frombuffer(f.read(2 * n_tok * nv), dtype=np.uint16).reshape(n_tok, nv)
    hdr = a[:, :4].copy().view(np.float32)  # scale, min_log_prob
    return a[:, 4:4 + n_vocab].astype(np.float64) * hdr[:, :1] + hdr[:, 1:2]
full, em, same = [], [], 0
for c in range(n_chunk):
    lp, lq = chunk(fb), chunk(fq)
    # renormalise (quantisation to 16 nats / 65535 steps leaves sums slightly off 1)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True)); lq -= np.log(np.exp(lq).sum(1, keepdims=True))
    p = np.exp(lp)
    full.append(np.where(lp > -16, p * (lp - lq), 0).sum(1))
    top = np.argpartition(-lp, 32, axis=1)[:, :32]
    tp, tlq = np.take_along_axis(lp, top, 1), np.take_along_axis(lq, top, 1)
    k = (np.exp(tp) * (tp - tlq)).sum(1)
    pr, qr = 1 - np.exp(tp).sum(1), np.maximum(1 - np.exp(tlq).sum(1), 1e-30)
    k += np.where(pr > 1e-12, pr * (np.log(np.maximum(pr, 1e-300)) - np.log(qr)), 0)
    em.append(np.maximum(k, 0)); same += (lp.argmax(1) == lq.argmax(1)).sum()
full, em = np.concatenate(full), np.concatenate(em); n = len(full)
p99 = lambda x: np.sort(x)[int(min(n - 1, np.ceil(0.99 * n) - 1))]
print(f"tokens {n}  full-vocab KL mean {full.mean():.4e} p99 {p99(full):.4e} | "
      f"top-32+bucket KL mean {em.mean():.4e} p99 {p99(em):.4e} (ratio {em.mean()/full.mean():.3f}) | top-1 same {same/n:.4%}")
