#!/usr/bin/python3
"""Reports how a trained model's gates spread tokens over experts, on held-out text.

    /usr/bin/python3 tools/train/routing.py --model default-model/src/main/resources/io/expertmesh/defaultmodel \
        --text build/corpus/heldout.txt --tokens 20000

For each MoE layer: the load of the busiest expert over the mean load (1.0 is perfectly even; a random gate gives
about 1.1 at this many tokens), and the three busiest experts with their share of the routed slots. The forward
pass is the reference one (tools/reference), with the correction bias, as the engine routes.
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, HERE)
import deepseek_v3_reference as ref  # noqa: E402
from bpe import Encoder, SEP  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--tokens", type=int, default=20000)
    ap.add_argument("--window", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    model, margs, _ = ref.load_model(args.model, "naive")
    enc = Encoder(os.path.join(args.model, "tokenizer.json"))
    with open(args.text, encoding="utf-8") as f:
        text = f.read().replace("\n" + SEP + "\n", "\n\n")
    ids = enc.encode(text)[: args.tokens]
    moe_layers = [i for i, l in enumerate(model.layers) if isinstance(l.ffn, ref.MoE)]
    counts = {i: torch.zeros(margs.n_routed_experts) for i in moe_layers}
    with torch.no_grad():
        for s in range(0, len(ids) - 1, args.window - 1):
            chunk = [0] + ids[s:s + args.window - 1]
            h = torch.nn.functional.embedding(torch.tensor([chunk]), model.embed)
            n = len(chunk)
            mask = torch.full((n, n), float("-inf")).triu_(1)
            for layer in model.layers:
                h = layer.forward(h, 0, model.freqs_cis[:n], mask)
            for i in moe_layers:
                idx = model.layers[i].ffn.gate.last_indices
                counts[i] += torch.bincount(idx.flatten(), minlength=margs.n_routed_experts).float()
    print(f"{len(ids)} held-out tokens, {margs.n_routed_experts} experts, top {margs.n_activated_experts}")
    print("layer  max/mean  busiest experts (share of routed slots)")
    for i in moe_layers:
        c = counts[i]
        share = c / c.sum()
        top = torch.topk(share, 3)
        busiest = ", ".join(f"{int(e)}: {100 * float(s):.1f}%" for s, e in zip(top.values, top.indices))
        print(f"{i:5d}  {float(c.max() / c.mean()):8.2f}  {busiest}")


if __name__ == "__main__":
    main()
