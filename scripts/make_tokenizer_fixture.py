#!/usr/bin/env python3
"""Regenerate crates/rotograph-sd/tests/fixtures/clip_tokens.json.

Reference CLIP BPE token ids (no BOS/EOS) for a set of varied prompts, computed with
open_clip's `SimpleTokenizer` (a copy of OpenAI CLIP's simple_tokenizer.py), reading the same
`bpe_simple_vocab_16e6.txt.gz` that rotograph-sd ships.

Setup (no torch needed; torch/numpy are stubbed since the tokenizer doesn't use them):

    pip download --no-deps open_clip_torch -d /tmp/oc
    (cd /tmp/oc && unzip -o open_clip_torch-*.whl 'open_clip/*')
    python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install ftfy regex
    /tmp/tokvenv/bin/python scripts/make_tokenizer_fixture.py /tmp/oc/open_clip

Prompts avoid combining sequences (ftfy NFC-normalizes; rotograph does not) and HTML
entities (OpenAI's cleanup html-unescapes, HF's CLIPTokenizer as used by Automatic1111 only
through ftfy, rotograph not at all).
"""
import importlib.util
import json
import os
import sys
import types


def stub(name):
    mod = types.ModuleType(name)
    mod.__getattr__ = lambda attr: object  # annotations like torch.Tensor
    sys.modules[name] = mod


PROMPTS = [
    "a photo of a cat",
    "A Photo Of A CAT",
    "",
    "   ",
    "masterpiece, best quality, 1girl, solo, looking at viewer",
    "a (red:1.3) [blue] car, ((sharp focus))",
    "don't stop, it's we'll they're I've I'm you'd",
    "it\u2019s a \u201cquoted\u201d word",
    "'s's 'S 'tis",
    "1024x768 resolution, 3.5 stars, $100, 50% off, 2023-11-24",
    "!!! ??? ... --- ,,, ;;",
    "hello\tworld\n\nnew   lines",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587",
    "\u03b1\u03b2\u03b3 \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u043f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
    "emoji \U0001F600\U0001F431 cat \u2764\ufe0f",
    "anime style, studio ghibli, cel shading, flat colors, clean lineart",
    "unbelievablyextraordinarilylongwordthatneedsmanymerges",
    "a<lora:test:0.8> b\\(c\\) d",
    "photorealistic, 8k uhd, dslr, soft lighting, high quality, film grain, Fujifilm XT3",
    "\u0661\u0662\u0663 \u00bd \u2460 \u2167",
    "x" * 300,
    ", ".join(["beautiful detailed landscape with mountains and rivers"] * 12),
    "tab\u00a0nbsp\u3000ideographic space",
    "C++ & C# <tag> [x] {y} | ~ ` ^ _ = +",
]


def main():
    oc_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/oc/open_clip"
    stub("torch")
    stub("numpy")
    spec = importlib.util.spec_from_file_location("oc_tokenizer", os.path.join(oc_dir, "tokenizer.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tok = mod.SimpleTokenizer(os.path.join(oc_dir, "bpe_simple_vocab_16e6.txt.gz"))
    assert len(tok.encoder) == 49408
    cases = [{"text": p, "ids": tok.encode(p)} for p in PROMPTS]
    out = os.path.join(os.path.dirname(__file__), "..", "crates", "rotograph-sd", "tests", "fixtures", "clip_tokens.json")
    with open(out, "w", encoding="utf-8") as f:
        f.write('{"source": "open_clip SimpleTokenizer (OpenAI CLIP simple_tokenizer.py)",\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=True) for c in cases))
        f.write("\n ]\n}\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
