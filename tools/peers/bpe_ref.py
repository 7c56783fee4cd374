#!/usr/bin/python3
"""Reference GPT-2 byte-level BPE (tokenizer.json merges, GPT-2 regex) -> writes token ids, one per line."""
import json, sys, regex
tj = json.load(open(sys.argv[1], encoding="utf-8")); m = tj["model"]
vocab = m["vocab"]; ranks = {tuple(x.split(" ") if isinstance(x, str) else x): i for i, x in enumerate(m["merges"])}
bs = list(range(ord("!"), ord("~")+1)) + list(range(ord("¡"), ord("¬")+1)) + list(range(ord("®"), ord("ÿ")+1))
cs = bs[:]; n = 0
for b in range(256):
    if b not in bs: bs.append(b); cs.append(256+n); n += 1
b2u = {b: chr(c) for b, c in zip(bs, cs)}
pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
cache = {}
def bpe(w):
    if w in cache: return cache[w]
    parts = list(w)
    while len(parts) > 1:
        best = min(((ranks.get((parts[i], parts[i+1]), 1 << 30), i) for i in range(len(parts)-1)))
        if best[0] == 1 << 30: break
        a, b = parts[best[1]], parts[best[1]+1]; out = []; i = 0
        while i < len(parts):
            if i < len(parts)-1 and parts[i] == a and parts[i+1] == b: out.append(a+b); i += 2
            else: out.append(parts[i]); i += 1
        parts = out
    cache[w] = [vocab[p] for p in parts]; return cache[w]
text = open(sys.argv[2], encoding="utf-8").read()
ids = [t for piece in pat.findall(text) for t in bpe("".join(b2u[b] for b in piece.encode("utf-8")))]
print(len(ids), file=sys.stderr)
open(sys.argv[3], "w").write("\n".join(map(str, ids)) + "\n")
