"""Shared reference code for scripts/sd_parity.py and scripts/bench_sd.py (PyTorch + diffusers).

What it implements (on top of the diffusers/transformers modules, written here from the
published definitions):

* model configs per architecture (`ARCHS`): a tiny one for parity fixtures and the full-size
  one for benchmarks: "sd15" (tiny and full) and "sd-turbo" (full only: SD 2.1 architecture
  plus a default-config TAESD).
* the CLIP tokenizer built from the BPE vocabulary rotograph ships
  (`crates/rotograph-sd/data/bpe_simple_vocab_16e6.txt.gz`), as OpenAI CLIP derives its
  vocabulary from it: the 256 byte symbols, the same with `</w>`, one entry per merge, then
  `<|startoftext|>` and `<|endoftext|>`. Sequences are BOS + tokens (truncated to 75) + EOS,
  padded to 77 with EOS as SD 1.x does.
* the k-diffusion view of SD's discrete model as Automatic1111 uses it: scaled-linear betas
  in float64 (`linspace(sqrt(0.00085), sqrt(0.012), 1000) ** 2`), `alphas_cumprod` stored as
  float32, sigmas `sqrt((1 - ac) / ac)`; `get_sigmas(n)` interpolates log sigma at
  `t = linspace(999, 0, n)` and appends 0; img2img keeps `sigmas[steps - t_enc - 1:]` with
  `t_enc = int(min(denoise, 0.999) * steps)`; `sigma_to_t` interpolates t linearly in log
  sigma; the eps denoiser is `x - sigma * eps(x / sqrt(sigma^2 + 1), t)`; CFG is applied to eps
  (`uncond + cfg * (cond - uncond)`, uncond and cond in one batch of 2, uncond first).
* the Euler and Euler ancestral (eta 1) steps of k-diffusion's `sample_euler` /
  `sample_euler_ancestral`, with the ancestral noise taken from a caller-supplied list.
"""
import gzip
import json
import math
import os
import tempfile

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPE = os.path.join(REPO, "crates", "rotograph-sd", "data", "bpe_simple_vocab_16e6.txt.gz")

# ---------------------------------------------------------------------------------------------
# Configs. "tiny" sizes keep the committed fixture small; "full" is the real architecture.

SD15_FULL = {
    "unet": {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 768,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                             "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 64,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                           "CrossAttnUpBlock2D"],
    },
    "vae": {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 512,
        "scaling_factor": 0.18215,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    },
    "text_encoder": {
        "architectures": ["CLIPTextModel"],
        "hidden_act": "quick_gelu",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "max_position_embeddings": 77,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "projection_dim": 768,
        "vocab_size": 49408,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
    },
}

# Tiny SD1.x: same block structure as SD 1.5 (cross-attention in all but the deepest block,
# 2 resnets per block, 3 up-samplings in the VAE) at small widths. attention_head_dim is the
# number of heads in diffusers' SD1.x configs (4 heads of 8 channels here).
# The UNet keeps 32 norm groups: candle 0.11's DownBlock2D / UpBlock2D resnets always use 32.
SD15_TINY = {
    "unet": dict(SD15_FULL["unet"], block_out_channels=[32, 32, 32], attention_head_dim=4,
                 cross_attention_dim=16, norm_num_groups=32, sample_size=8,
                 down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]),
    "vae": dict(SD15_FULL["vae"], block_out_channels=[16, 32, 32, 32], norm_num_groups=8,
                sample_size=64),
    "text_encoder": dict(SD15_FULL["text_encoder"], hidden_size=16, intermediate_size=32,
                         num_attention_heads=2, num_hidden_layers=2, projection_dim=16),
}

# SD-Turbo (stabilityai/sd-turbo): the SD 2.1 architecture at 512x512. UNet with per-block
# head dims [5, 10, 20, 20] (64-channel heads), linear projections in the transformers and
# 1024-wide cross-attention; the OpenCLIP ViT-H text encoder as diffusers stores it (23 of its
# 24 layers, the penultimate layer's output is SD 2.x's conditioning), GELU; the SD VAE;
# epsilon prediction (scheduler_config.json written by `save_diffusers`).
SD_TURBO_FULL = {
    "unet": dict(SD15_FULL["unet"], attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024,
                 use_linear_projection=True),
    "vae": dict(SD15_FULL["vae"]),
    "text_encoder": dict(SD15_FULL["text_encoder"], hidden_act="gelu", hidden_size=1024,
                         intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
                         projection_dim=512),
    "prediction_type": "epsilon",
    # TAESD as diffusers' AutoencoderTiny with its default config (madebyollin/taesd).
    "taesd": {},
}

ARCHS = {"sd15": {"full": SD15_FULL, "tiny": SD15_TINY}, "sd-turbo": {"full": SD_TURBO_FULL}}


def build_models(arch, size, seed):
    """Random-weight (unet, vae, text_encoder) of `arch` (a key of ARCHS) at `size` ("tiny"/"full"),
    initialised by the libraries' own initialisers after `torch.manual_seed(seed)`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if arch not in ARCHS:
        raise SystemExit(f"unknown arch {arch!r} (have: {', '.join(ARCHS)})")
    if size not in ARCHS[arch]:
        raise SystemExit(f"arch {arch!r} has no {size!r} config (have: {', '.join(ARCHS[arch])})")
    cfg = ARCHS[arch][size]
    torch.manual_seed(seed)
    strip = lambda d: {k: v for k, v in d.items() if not k.startswith("_")}
    unet = UNet2DConditionModel(**strip(cfg["unet"]))
    vae = AutoencoderKL(**strip(cfg["vae"]))
    te_cfg = {k: v for k, v in cfg["text_encoder"].items() if k != "architectures"}
    text = CLIPTextModel(CLIPTextConfig(**te_cfg))
    return unet.eval(), vae.eval(), text.eval()


def build_taesd(arch, seed):
    """Random-weight TAESD (diffusers `AutoencoderTiny`) of `arch`'s full config, or None."""
    from diffusers import AutoencoderTiny

    cfg = ARCHS[arch]["full"].get("taesd")
    if cfg is None:
        return None
    torch.manual_seed(seed)
    return AutoencoderTiny(**cfg).eval()


def write_extras(out, arch, seed, dtype=torch.float32):
    """The parts of a diffusers folder besides unet/vae/text_encoder that `arch` has: the
    scheduler's prediction type and a random `taesd/` folder."""
    cfg = ARCHS[arch]["full"]
    if "prediction_type" in cfg:
        os.makedirs(os.path.join(out, "scheduler"), exist_ok=True)
        with open(os.path.join(out, "scheduler", "scheduler_config.json"), "w") as f:
            json.dump({"_class_name": "EulerDiscreteScheduler",
                       "prediction_type": cfg["prediction_type"]}, f)
    taesd = build_taesd(arch, seed)
    if taesd is not None:
        taesd.to(dtype).save_pretrained(os.path.join(out, "taesd"), safe_serialization=True)


def load_taesd(path):
    """The `taesd/` folder of a diffusers model folder as an `AutoencoderTiny`, in float32."""
    from diffusers import AutoencoderTiny

    return AutoencoderTiny.from_pretrained(os.path.join(path, "taesd"),
                                           torch_dtype=torch.float32).eval()


def save_diffusers(out, unet, vae, text, dtype=torch.float32):
    """Writes the models as a diffusers folder (unet/, vae/, text_encoder/)."""
    unet.to(dtype).save_pretrained(os.path.join(out, "unet"), safe_serialization=True)
    vae.to(dtype).save_pretrained(os.path.join(out, "vae"), safe_serialization=True)
    text.to(dtype).save_pretrained(os.path.join(out, "text_encoder"), safe_serialization=True)
    for m in (unet, vae, text):
        m.to(torch.float32)


def load_diffusers(path):
    """(unet, vae, text_encoder) from a diffusers folder, in float32."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(os.path.join(path, "unet"), torch_dtype=torch.float32)
    vae = AutoencoderKL.from_pretrained(os.path.join(path, "vae"), torch_dtype=torch.float32)
    text = CLIPTextModel.from_pretrained(os.path.join(path, "text_encoder"), torch_dtype=torch.float32)
    return unet.eval(), vae.eval(), text.eval()


# ---------------------------------------------------------------------------------------------
# Tokenizer


def bytes_to_unicode():
    """GPT-2/CLIP's reversible byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


_TOKENIZER = None


def tokenizer():
    """A transformers CLIPTokenizer over rotograph's shipped BPE file."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from transformers import CLIPTokenizer

        merges = gzip.open(BPE).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        vocab = list(bytes_to_unicode().values())
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m.split()) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        d = tempfile.mkdtemp(prefix="clipvocab")
        with open(os.path.join(d, "vocab.json"), "w") as f:
            json.dump({t: i for i, t in enumerate(vocab)}, f)
        with open(os.path.join(d, "merges.txt"), "w") as f:
            f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
        _TOKENIZER = CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"),
                                   pad_token="<|endoftext|>")
    return _TOKENIZER


def token_ids(prompt):
    """`[1, 77]` int64 ids: BOS, the prompt's tokens (at most 75), EOS, EOS padding."""
    tok = tokenizer()
    ids = tok(prompt, add_special_tokens=False)["input_ids"][:75]
    ids = [tok.bos_token_id] + ids + [tok.eos_token_id]
    ids += [tok.eos_token_id] * (77 - len(ids))
    return torch.tensor([ids], dtype=torch.int64)


# ---------------------------------------------------------------------------------------------
# k-diffusion discrete schedule, as Automatic1111 builds it for SD 1.x


def model_sigmas():
    n = 1000
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, n, dtype=torch.float64) ** 2
    ac = torch.cumprod(1.0 - betas, dim=0).to(torch.float32)
    return ((1 - ac) / ac) ** 0.5


def get_sigmas(n):
    sig = model_sigmas()
    log_sigmas = sig.log()
    t = torch.linspace(len(sig) - 1, 0, n)
    lo, hi, w = t.floor().long(), t.ceil().long(), t.frac()
    s = ((1 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp()
    return torch.cat([s, s.new_zeros([1])])


def img2img_sigmas(steps, denoise):
    t_enc = int(min(denoise, 0.999) * steps)
    return get_sigmas(steps)[steps - t_enc - 1:]


def sigma_to_t(sigma):
    log_sigmas = model_sigmas().log()
    ls = math.log(float(sigma))
    dists = ls - log_sigmas
    low = int((dists >= 0).nonzero().max().clamp(max=len(log_sigmas) - 2))
    lo, hi = float(log_sigmas[low]), float(log_sigmas[low + 1])
    w = min(max((lo - ls) / (lo - hi), 0.0), 1.0)
    return (1 - w) * low + w * (low + 1)


@torch.no_grad()
def encode_text(text, ids):
    """Last hidden state after the final layer norm (CLIP skip 1)."""
    return text(ids).last_hidden_state


@torch.no_grad()
def vae_encode_mean(vae, image):
    """Posterior mean times the scaling factor; `image` is `[B, 3, H, W]` in [-1, 1]."""
    enc = vae.encode(image)
    if hasattr(enc, "latents"):  # AutoencoderTiny: already in the UNet's scaled latent space
        return enc.latents
    return enc.latent_dist.mean * vae.config.scaling_factor


@torch.no_grad()
def vae_decode(vae, latents):
    """Image in [-1, 1]; AutoencoderTiny's scaling_factor is 1.0, so this also serves TAESD."""
    return vae.decode(latents / vae.config.scaling_factor).sample


@torch.no_grad()
def cfg_denoise(unet, x, sigma, uncond, cond, cfg):
    c_in = 1.0 / (float(sigma) ** 2 + 1) ** 0.5
    t = torch.tensor(sigma_to_t(sigma), dtype=torch.float32)
    if cfg == 1.0:
        # uncond + 1 * (cond - uncond) = cond: one UNet pass at batch 1, as rotograph does.
        eps = unet(x * c_in, t, encoder_hidden_states=cond).sample
    else:
        xin = torch.cat([x * c_in] * 2)
        eps = unet(xin, t, encoder_hidden_states=torch.cat([uncond, cond])).sample
        eps_u, eps_c = eps.chunk(2)
        eps = eps_u + cfg * (eps_c - eps_u)
    return x - eps * float(sigma)


@torch.no_grad()
def sample(kind, unet, x, sigmas, uncond, cond, cfg, step_noise=()):
    """k-diffusion Euler ("euler") or Euler ancestral, eta 1 ("euler_a"); `step_noise` yields the
    ancestral noise of each step with sigma_next > 0, in order."""
    step_noise = iter(step_noise)
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        den = cfg_denoise(unet, x, s, uncond, cond, cfg)
        d = (x - den) / s
        if kind == "euler":
            x = x + d * (s_next - s)
        elif kind == "euler_a":
            up = min(s_next, (s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2) ** 0.5)
            down = (s_next ** 2 - up ** 2) ** 0.5
            x = x + d * (down - s)
            if s_next > 0:
                x = x + next(step_noise) * up
        else:
            raise SystemExit(f"unknown sampler {kind!r}")
    return x
