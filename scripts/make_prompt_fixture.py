#!/usr/bin/env python3
"""Regenerate crates/rotograph-sd/tests/fixtures/prompt_attention.json.

Runs Automatic1111's own `parse_prompt_attention` (from a checkout of
stable-diffusion-webui, `modules/prompt_parser.py`, v1.6 or later) over hand-picked and
fixed-seed random prompts and records its output (or that it raised), so the Rust parser can
be compared with it. `torch`/`lark` are stubbed; only the attention parser is used.

    python3 scripts/make_prompt_fixture.py /path/to/stable-diffusion-webui/modules/prompt_parser.py
"""
import importlib.util
import inspect
import json
import os
import random
import sys
import types


def stub(name):
    mod = types.ModuleType(name)
    mod.__getattr__ = lambda attr: object
    sys.modules.setdefault(name, mod)


HANDPICKED = [
    "normal text",
    "an (important) word",
    "(unbalanced",
    "\\(literal\\]",
    "(unnecessary)(parens)",
    "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    "(a:1.5e1)",
    "(a: 1.5 )",
    "(a:-0.5)",
    "(a:+.5)",
    "a:1.5) b",
    "[a:1.5]",
    "a\\b\\\\c",
    "((a) b:1.2)",
    "[[a]] [[[b]]]",
    "a ] b ) c",
    "a BREAK b",
    "aBREAK b BREAKc",
    "BREAK BREAK",
    "(a BREAK b)",
    "x:BREAK:y",
    "",
    "()",
    "(a:1.2.3)",
    "(a:.)",
    "a:1.2.3) not in brackets",
    "[(a:2)]",
    "masterpiece, (best quality:1.2), [blurry], ((detailed eyes)), BREAK red hair",
]


def random_prompts(n, seed=1234):
    rng = random.Random(seed)
    pieces = list("ab ,.()[]:\\19+-") + [" BREAK ", "BREAK", ":1.2)", ":0.5)", "\u00e9", "\t"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30))) for _ in range(n)]


def main():
    path = sys.argv[1]
    stub("torch")
    stub("lark")
    spec = importlib.util.spec_from_file_location("a1111_prompt_parser", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception:
        pass  # module-level code past the function definitions may need the real deps
    parse = mod.parse_prompt_attention
    two_args = len(inspect.signature(parse).parameters) > 1
    cases = []
    for text in HANDPICKED + random_prompts(400):
        try:
            res = parse(text, "Original") if two_args else parse(text)
            cases.append({"text": text, "pieces": [[t, float(w)] for t, w in res]})
        except ValueError:
            cases.append({"text": text, "error": True})
    out = os.path.join(os.path.dirname(__file__), "..", "crates", "rotograph-sd", "tests", "fixtures", "prompt_attention.json")
    with open(out, "w", encoding="utf-8") as f:
        f.write('{"source": "A1111 modules/prompt_parser.py parse_prompt_attention",\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=True) for c in cases))
        f.write("\n ]\n}\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
