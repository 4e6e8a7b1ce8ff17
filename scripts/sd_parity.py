#!/usr/bin/env python3
"""Regenerate the SD parity fixtures under crates/rotograph-sd/tests/fixtures/parity/<arch>/.

Run by hand (not by CI), with PyTorch, diffusers and transformers installed, on the CPU:

    pip install torch diffusers transformers safetensors
    python3 scripts/sd_parity.py            # --arch sd15 (the only one so far)

It builds a tiny random-weight model of the architecture with diffusers / transformers
(`sd_ref.ARCHS[arch]["tiny"]`, `torch.manual_seed(1234)`; norm weights 1 + 0.2 N(0, 1) and
biases 0.2 N(0, 1) instead of 1 / 0), rounds its weights to float16 and
saves them in float16 as a diffusers folder `<out>/model/` (small to commit; every reference
below is computed in float32 from those same rounded weights), then writes
`<out>/reference.safetensors` (float32 tensors) and `<out>/reference.json` (everything else):

  text      token ids [2, 77] (prompts tokenized with a CLIPTokenizer over rotograph's BPE
            file) -> the text model's last hidden state (`text_hidden`)
  unet      `unet_x` [2, 4, 8, 12], fractional timestep, `unet_ctx` -> `unet_out` (noise)
  vae       `vae_image` [1, 3, 64, 96] in [-1, 1] -> `vae_mean` (posterior mean x scaling);
            `vae_latent` -> `vae_decoded` (decode of latent / scaling)
  img2img   per sampler in {euler, euler_a}: an RGB uint8 image `img2img_image` [64, 96, 3],
            prompt "a photo of a (red:1.3) car" (A1111 emphasis: hidden states x token weights,
            rescaled to the original mean) and negative prompt "blurry, lowres" -> their
            conditionings (`img2img_cond`, `img2img_uncond`); VAE mean latent; A1111's
            k-diffusion img2img schedule for 6 steps at denoise 0.5 (sigmas[2:], 4 sampler
            steps); x = init + noise_0 * sigmas[0] with `<s>_noise_0`; then 4 Euler or Euler
            ancestral steps (eta 1, per-step noise `<s>_noise_1..3`) on the CFG (7.5) eps
            denoiser (see sd_ref.py for the exact arithmetic) -> `<s>_latent`; VAE decode ->
            `<s>_decoded` (float, [-1, 1]-ish) and `<s>_png` (uint8 as A1111 saves it:
            `clamp((x + 1) * 127.5, 0, 255)` rounded).

All noises are given in the fixture, so no random generator has to match.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_ref  # noqa: E402

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

PROMPT = [("a photo of a ", 1.0), ("red", 1.3), (" car", 1.0)]  # "a photo of a (red:1.3) car"
NEGATIVE = [("blurry, lowres", 1.0)]
STEPS, DENOISE, CFG = 6, 0.5, 7.5
H, W = 64, 96


def weighted_ids(fragments):
    """A1111 tokenizes each emphasis fragment on its own and gives its tokens the weight."""
    tok = sd_ref.tokenizer()
    ids, weights = [], []
    for text, w in fragments:
        t = tok(text, add_special_tokens=False)["input_ids"]
        ids += t
        weights += [w] * len(t)
    assert len(ids) <= 75
    pad = 75 - len(ids)
    ids = [tok.bos_token_id] + ids + [tok.eos_token_id] * (pad + 1)
    weights = [1.0] + weights + [1.0] * (pad + 1)
    return torch.tensor([ids]), torch.tensor([weights])


@torch.no_grad()
def condition(text, fragments):
    ids, weights = weighted_ids(fragments)
    z = sd_ref.encode_text(text, ids)
    mean = z.mean()
    z = z * weights[..., None]
    z = z * (mean / z.mean())
    return ids, z


def test_image(gen):
    """A smooth pattern plus a little seeded noise, uint8 [H, W, 3]."""
    y = torch.linspace(0, 1, H)[:, None]
    x = torch.linspace(0, 1, W)[None, :]
    r = 0.5 + 0.5 * torch.sin(6.0 * x + 2.0 * y)
    g = (x * y).expand(H, W)
    b = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.08).float() * 0.8 + 0.1
    img = torch.stack([r, g, b], -1) + 0.05 * torch.randn(H, W, 3, generator=gen)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--arch", default="sd15", choices=sorted(sd_ref.ARCHS))
    ap.add_argument("--out", help="default: crates/rotograph-sd/tests/fixtures/parity/<arch short name>")
    a = ap.parse_args()
    short = {"sd15": "sd1"}.get(a.arch, a.arch)
    out = a.out or os.path.join(sd_ref.REPO, "crates", "rotograph-sd", "tests", "fixtures", "parity", short)
    torch.set_grad_enabled(False)

    unet, vae, text = sd_ref.build_models(a.arch, "tiny", 1234)
    # The libraries initialise norms to weight 1 / bias 0; perturb them so that the affine
    # parts are exercised and the text encoder's output has a mean far from 0 (A1111's
    # emphasis rescales by the ratio of two means, ill-conditioned near 0).
    gen = torch.Generator().manual_seed(99)
    for m in (unet, vae, text):
        for name, p in m.named_parameters():
            if "norm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.data = base + 0.2 * torch.randn(p.shape, generator=gen)
            p.data = p.data.half().float()
    if os.path.isdir(os.path.join(out, "model")):
        shutil.rmtree(os.path.join(out, "model"))
    sd_ref.save_diffusers(os.path.join(out, "model"), unet, vae, text, dtype=torch.float16)

    gen = torch.Generator().manual_seed(4321)
    hidden = text.config.hidden_size
    lat_h, lat_w = H // 8, W // 8
    t = {}
    meta = {"arch": a.arch, "torch": torch.__version__}
    import diffusers
    import transformers
    meta["diffusers"], meta["transformers"] = diffusers.__version__, transformers.__version__

    # Text encoder.
    ids = torch.cat([sd_ref.token_ids("a photo of a red car"), sd_ref.token_ids("blurry, lowres")])
    meta["text_ids"] = ids.tolist()
    t["text_hidden"] = sd_ref.encode_text(text, ids)

    # UNet.
    meta["unet_timestep"] = 421.375
    t["unet_x"] = torch.randn(2, 4, lat_h, lat_w, generator=gen)
    t["unet_ctx"] = torch.randn(2, 77, hidden, generator=gen)
    t["unet_out"] = unet(t["unet_x"], torch.tensor(meta["unet_timestep"]),
                         encoder_hidden_states=t["unet_ctx"]).sample

    # VAE.
    t["vae_image"] = torch.rand(1, 3, H, W, generator=gen) * 2 - 1
    t["vae_mean"] = sd_ref.vae_encode_mean(vae, t["vae_image"])
    t["vae_latent"] = torch.randn(1, 4, lat_h, lat_w, generator=gen)
    t["vae_decoded"] = sd_ref.vae_decode(vae, t["vae_latent"])

    # img2img.
    image = test_image(gen)
    t["img2img_image"] = image.float()
    _, cond = condition(text, PROMPT)
    _, uncond = condition(text, NEGATIVE)
    t["img2img_cond"], t["img2img_uncond"] = cond, uncond
    init = sd_ref.vae_encode_mean(vae, image.permute(2, 0, 1)[None].float() / 127.5 - 1)
    t["img2img_init_latent"] = init
    sigmas = sd_ref.img2img_sigmas(STEPS, DENOISE)
    meta["img2img"] = {"prompt": "a photo of a (red:1.3) car", "negative_prompt": "blurry, lowres",
                       "steps": STEPS, "denoise": DENOISE, "cfg": CFG, "sigmas": sigmas.tolist(),
                       "samplers": {"euler": "Euler", "euler_a": "Euler a"}}
    for kind in ("euler", "euler_a"):
        noises = [torch.randn(init.shape, generator=gen) for _ in range(len(sigmas) - 1)]
        for i, n in enumerate(noises):
            t[f"{kind}_noise_{i}"] = n
        x = init + noises[0] * sigmas[0]
        x = sd_ref.sample(kind, unet, x, sigmas, uncond, cond, CFG, noises[1:])
        t[f"{kind}_latent"] = x
        dec = sd_ref.vae_decode(vae, x)
        t[f"{kind}_decoded"] = dec
        t[f"{kind}_png"] = ((dec[0].permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).round()

    save_file({k: v.contiguous().float() for k, v in t.items()}, os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
