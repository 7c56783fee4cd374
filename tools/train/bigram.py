#!/usr/bin/python3
"""The yardstick the default model must beat clearly: a character (byte) bigram model of the training corpus,
add-one smoothed, in bits per byte on a text.

    /usr/bin/python3 tools/train/bigram.py --corpus build/corpus/train.txt --text FILE
"""
import argparse
import math

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--text", required=True, nargs="+")
    args = ap.parse_args()
    data = np.frombuffer(open(args.corpus, "rb").read(), dtype=np.uint8)
    counts = np.ones((256, 256), dtype=np.float64)
    np.add.at(counts, (data[:-1], data[1:]), 1)
    logp = np.log2(counts / counts.sum(axis=1, keepdims=True))
    for path in args.text:
        t = np.frombuffer(open(path, "rb").read(), dtype=np.uint8)
        bits = -logp[t[:-1], t[1:]].sum()
        print(f"{path}: {bits / (len(t) - 1):.3f} bits per byte (character bigram)")


if __name__ == "__main__":
    main()
