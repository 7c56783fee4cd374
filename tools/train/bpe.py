#!/usr/bin/python3
"""Byte-level BPE (the GPT-2 scheme) trained on the corpus and saved as a Hugging Face tokenizer.json.

    /usr/bin/python3 tools/train/bpe.py --corpus build/corpus/train.txt --vocab 8192 --out build/tokenizer

The split into words is the GPT-2 regular expression that the Hugging Face ByteLevel pre-tokenizer applies
(use_regex), so encode() here gives the ids the runtime's tokenizer (tokenizers through DJL) gives.
Ids 0 and 1 are <|bos|> and <|eos|>; 2..257 are the 256 bytes; the rest are merges, most frequent first.
"""
import argparse
import heapq
import json
import os
from collections import Counter, defaultdict

import regex

GPT2_SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
SPECIALS = ["<|bos|>", "<|eos|>"]
SEP = "\x1e"


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_CHARS = bytes_to_unicode()


def words_of(text):
    for w in GPT2_SPLIT.findall(text):
        yield "".join(BYTE_CHARS[b] for b in w.encode("utf-8"))


def train(corpus_path, vocab_size):
    with open(corpus_path, encoding="utf-8") as f:
        docs = f.read().split("\n" + SEP + "\n")
    counts = Counter()
    for d in docs:
        counts.update(words_of(d))
    words = [list(w) for w in counts]
    freqs = list(counts.values())
    pair_count = defaultdict(int)
    where = defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freqs[i]
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    n_merges = vocab_size - len(SPECIALS) - 256
    while len(merges) < n_merges and heap:
        c, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -c or c == 0:
            continue            # stale heap entry
        merges.append(pair)
        a, b = pair
        merged = a + b
        changed = set()
        for i in list(where[pair]):
            w = words[i]
            f = freqs[i]
            j = 0
            out = []
            # Remove this word's old pairs, merge, add the new ones.
            for x, y in zip(w, w[1:]):
                pair_count[(x, y)] -= f
                changed.add((x, y))
                where[(x, y)].discard(i)
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for x, y in zip(out, out[1:]):
                pair_count[(x, y)] += f
                changed.add((x, y))
                where[(x, y)].add(i)
        pair_count.pop(pair, None)
        for p in changed:
            if pair_count.get(p, 0) > 0:
                heapq.heappush(heap, (-pair_count[p], p))
    return merges


def save(merges, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for b in range(256):
        vocab[BYTE_CHARS[b]] = len(vocab)
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(SPECIALS)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    return vocab


class Encoder:
    """encode() with the saved merges: the same ids as the Hugging Face tokenizer (no special tokens added)."""

    def __init__(self, tokenizer_json):
        with open(tokenizer_json, encoding="utf-8") as f:
            model = json.load(f)["model"]
        self.vocab = model["vocab"]
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(model["merges"])}
        self.cache = {}

    def _word(self, w):
        ids = self.cache.get(w)
        if ids is not None:
            return ids
        parts = list(w)
        while len(parts) > 1:
            best, at = None, -1
            for k in range(len(parts) - 1):
                r = self.ranks.get((parts[k], parts[k + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, k
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        ids = [self.vocab[p] for p in parts]
        if len(self.cache) < 500_000:
            self.cache[w] = ids
        return ids

    def encode(self, text):
        out = []
        for w in words_of(text):
            out.extend(self._word(w))
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    merges = train(args.corpus, args.vocab)
    vocab = save(merges, args.out)
    print(f"vocabulary {len(vocab)}; last merges {merges[-3:]}")


if __name__ == "__main__":
    main()
