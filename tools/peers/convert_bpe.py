#!/usr/bin/python3
"""Wrapper around ../shared/peers/convert.py (unmodified; PEERS_SRC overrides where it is) for a DeepSeek-V3 model with a GPT-2-style byte-level
BPE tokenizer.json. shared convert.py always writes a placeholder SPM vocab for DeepSeek (upstream's
_set_vocab_gpt2 needs `transformers`); this replaces only that step with what upstream's _set_vocab_gpt2 would
write, read straight from tokenizer.json, and declares the pre-tokenizer as "gpt-2" (llama.cpp would otherwise
identify it by hashing the tokenization of a check string with `transformers`, which is not available and would
not know this tokenizer anyway).
Refuses anything that is not a byte-level BPE with the GPT-2 regex and no normalizer.
Usage: PEERS=WORKDIR /usr/bin/python3 convert_bpe.py <hf dir> --outfile X.gguf --outtype bf16"""
import importlib.util, json, os, sys

# ../shared/peers beside the repository, or PEERS_SRC
_src = os.environ.get("PEERS_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "peers"))
spec = importlib.util.spec_from_file_location("peers_convert", os.path.join(_src, "convert.py"))
pc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pc)  # sets up shims, imports convert_hf_to_gguf, installs its own patches
gguf = pc.gguf
chf = pc.convert_hf_to_gguf


def _bpe_set_vocab(self):
    tj = json.load(open(os.path.join(self.dir_model, "tokenizer.json"), encoding="utf-8"))
    m, pre = tj["model"], tj.get("pre_tokenizer") or {}
    if m["type"] != "BPE" or m.get("byte_fallback") or tj.get("normalizer") is not None \
            or pre.get("type") != "ByteLevel" or not pre.get("use_regex", True) or pre.get("add_prefix_space"):
        raise SystemExit("convert_bpe.py: tokenizer.json is not a plain GPT-2 byte-level BPE")
    n = self.hparams["vocab_size"]
    added = {a["id"]: a for a in tj["added_tokens"]}
    rev = {i: t for t, i in m["vocab"].items()}
    for i, a in added.items():
        rev.setdefault(i, a["content"])
    assert max(rev) < n
    tokens, types = [], []
    for i in range(n):
        if i not in rev:
            tokens.append(f"[PAD{i}]"); types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(rev[i])
            a = added.get(i)
            types.append(gguf.TokenType.NORMAL if a is None else
                         gguf.TokenType.CONTROL if a.get("special") else gguf.TokenType.USER_DEFINED)
    self.gguf_writer.add_tokenizer_model("gpt2")
    self.gguf_writer.add_tokenizer_pre("gpt-2")
    self.gguf_writer.add_token_list(tokens)
    self.gguf_writer.add_token_types(types)
    sv = gguf.SpecialVocab(self.dir_model, load_merges=True)  # merges, bos/eos ids, add_bos from tokenizer_config
    sv.add_to_gguf(self.gguf_writer)


chf.DeepseekV2Model.set_vocab = _bpe_set_vocab
if __name__ == "__main__":
    chf.main()
