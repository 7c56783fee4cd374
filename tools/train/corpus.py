#!/usr/bin/python3
"""Builds the training corpus of the default model from freely licensed English text in Debian packages.

    apt-get install fortunes fortunes-min dict-gcide dict-foldoc dict-jargon dict-devil wordnet-base
    /usr/bin/python3 tools/train/corpus.py --out build/corpus

Writes train.txt and heldout.txt: one document per record, records separated by a line holding only
"\x1e" (ASCII record separator), which never occurs in the sources. A document goes to the held-out split
when a hash of its text says so (about 3%), so the split does not depend on the order of the sources.

Sources and licences (also in the README):
  fortunes (fortunes, fortunes-min)      BSD fortune(6) data files, freely redistributable
  The Devil's Dictionary (dict-devil)    public domain
  The Jargon File (dict-jargon)          public domain
  FOLDOC (dict-foldoc)                   GNU Free Documentation Licence
  GCIDE, 1913 Webster (dict-gcide)       GNU General Public Licence
  WordNet 3.0 glosses (wordnet-base)     WordNet 3.0 licence (BSD-style)
"""
import argparse
import glob
import gzip
import hashlib
import os
import random
import re

SEP = "\x1e"

FORTUNE_SKIP = {"ascii-art", "translate-me", "debian", "perl", "linux", "linuxcookie", "startrek", "zippy"}


def fortunes():
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        name = os.path.basename(path)
        if "." in name or name in FORTUNE_SKIP or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for doc in f.read().split("\n%\n"):
                doc = doc.strip("\n%")
                if 20 <= len(doc) <= 1500:
                    yield "fortunes", doc


def reflow(text):
    """Joins hard-wrapped lines into paragraphs; blank lines separate paragraphs."""
    paras = re.split(r"\n\s*\n", text)
    out = []
    for p in paras:
        p = " ".join(line.strip() for line in p.strip().splitlines())
        p = re.sub(r"\s+", " ", p).strip()
        if p:
            out.append(p)
    return "\n".join(out)


def dict_entries(name):
    """Entries of a dictd database, cut by its index (headword, base64 offset, base64 length)."""
    data = gzip.open(f"/usr/share/dictd/{name}.dict.dz").read()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def b64(s):
        v = 0
        for ch in s:
            v = v * 64 + alphabet.index(ch)
        return v

    seen = set()
    with open(f"/usr/share/dictd/{name}.index", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
                continue
            off, ln = b64(parts[1]), b64(parts[2])
            if off in seen:
                continue
            seen.add(off)
            yield data[off:off + ln].decode("utf-8", errors="replace")


def devil():
    for e in dict_entries("devil"):
        e = reflow(e)
        if len(e) >= 30:
            yield "devil", e


def jargon():
    for e in dict_entries("jargon"):
        e = reflow(e)
        if len(e) >= 30:
            yield "jargon", e


def foldoc():
    for e in dict_entries("foldoc"):
        e = re.sub(r"\{([^}]*)\}", r"\1", e)          # {cross references}
        e = re.sub(r"\(\d{4}-\d{2}-\d{2}\)\s*$", "", e.strip())   # trailing edit dates
        e = reflow(e)
        if len(e) >= 30:
            yield "foldoc", e


def gcide():
    for e in dict_entries("gcide"):
        e = e.replace("[1913 Webster]", "").replace("[WordNet 1.5]", "").replace("[PJC]", "")
        e = re.sub(r"\\[^\\\n]*\\", "", e)            # \pro*nun"ci*a`tion\
        e = re.sub(r"\[[^\]]{0,80}\]", "", e)          # [etymology]
        e = reflow(e)
        if len(e) >= 40:
            yield "gcide", e


def wordnet():
    for pos in ("noun", "verb", "adj", "adv"):
        with open(f"/usr/share/wordnet/data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                fields = line.split()
                count = int(fields[3], 16)
                words = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
                gloss = line.split("|", 1)[1].strip()
                if len(gloss) >= 20:
                    yield "wordnet", f"{', '.join(words)}: {gloss}"


# Characters kept per source: the large dictionaries are sampled down so that no one source's style dominates.
BUDGET = {"fortunes": None, "devil": None, "jargon": None, "foldoc": 4_000_000, "gcide": 6_000_000,
          "wordnet": 3_000_000}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--heldout-percent", type=float, default=3.0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    train, held = [], []
    stats = {}
    for source in (fortunes, devil, jargon, foldoc, gcide, wordnet):
        docs = [d for _, d in source()]
        name = source.__name__
        rng.shuffle(docs)
        budget = BUDGET[name]
        kept, chars = [], 0
        for d in docs:
            if SEP in d:
                continue
            if budget is not None and chars >= budget:
                break
            kept.append(d)
            chars += len(d)
        for d in kept:
            h = int.from_bytes(hashlib.sha256(d.encode("utf-8")).digest()[:4], "big")
            (held if h % 10000 < args.heldout_percent * 100 else train).append(d)
        stats[name] = (len(kept), chars)
    rng.shuffle(train)
    for fname, docs in (("train.txt", train), ("heldout.txt", held)):
        with open(os.path.join(args.out, fname), "w", encoding="utf-8") as f:
            f.write(("\n" + SEP + "\n").join(docs))
    for k, (n, c) in stats.items():
        print(f"{k:10s} {n:7d} documents {c / 1e6:6.2f} M chars")
    print(f"train {len(train)} documents, held out {len(held)}")


if __name__ == "__main__":
    main()
