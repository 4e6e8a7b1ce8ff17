#!/usr/bin/env python3
"""PyTorch + diffusers (CPU, float32) side of the SD benchmarks in BENCHMARKS.md.

    # once: full-size random weights as a diffusers folder (about 4.3 GB, not committed)
    python3 scripts/bench_sd.py make-weights /tmp/sd15-full --arch sd15
    # SD-Turbo (SD 2.1 architecture) plus a random default-config TAESD in taesd/ (~5.2 GB)
    python3 scripts/bench_sd.py make-weights /tmp/sd-turbo-full --arch sd-turbo
    # one measurement; prints one JSON line
    python3 scripts/bench_sd.py run /tmp/sd15-full --op unet --threads 1

`scripts/bench_sd.sh` runs this and the Rust twin
(`cargo run --release -p rotograph-sd --example bench_sd`) alternately on the same folder.

Ops (inputs are fixed-seed random tensors; the work is the same as the Rust side's):
  unet     one UNet evaluation on `size/8` latents at batch 2 (CFG; batch 1 at --cfg 1),
           context [batch, 77, hidden]
  vae-enc  VAE encode of one `size`x`size` image (posterior mean)
  vae-dec  VAE decode of one latent to a `size`x`size` image
  img2img  one frame: text encode (prompt + negative), VAE encode, the k-diffusion sampler
           over A1111's img2img schedule for --steps/--denoise (CFG at --cfg: batch 2, or one
           batch-1 UNet pass per step at --cfg 1 as SD-Turbo runs), VAE decode
`--vae taesd` swaps the VAE for the folder's `taesd/` (diffusers AutoencoderTiny) in the VAE
ops and the frame. Wall time and process CPU time are measured around the op only (weights
already loaded).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_ref  # noqa: E402

import torch  # noqa: E402


def blas_info():
    try:
        from threadpoolctl import threadpool_info

        return [{k: d.get(k) for k in ("internal_api", "architecture", "num_threads")}
                for d in threadpool_info()]
    except ImportError:
        return "threadpoolctl not installed"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-weights")
    mk.add_argument("out")
    mk.add_argument("--arch", default="sd15", choices=sorted(sd_ref.ARCHS))
    mk.add_argument("--seed", type=int, default=0)
    run = sub.add_parser("run")
    run.add_argument("model")
    run.add_argument("--op", required=True, choices=["unet", "vae-enc", "vae-dec", "img2img"])
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--size", type=int, default=512)
    run.add_argument("--steps", type=int, default=20)
    run.add_argument("--denoise", type=float, default=0.5)
    run.add_argument("--sampler", default="euler", choices=["euler", "euler_a"])
    run.add_argument("--cfg", type=float, default=7.0)
    run.add_argument("--vae", default="full", choices=["full", "taesd"])
    a = ap.parse_args()

    if a.cmd == "make-weights":
        unet, vae, text = sd_ref.build_models(a.arch, "full", a.seed)
        sd_ref.save_diffusers(a.out, unet, vae, text)
        del unet, vae, text
        sd_ref.write_extras(a.out, a.arch, a.seed)
        return

    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    unet, vae, text = sd_ref.load_diffusers(a.model)
    if a.vae == "taesd":
        vae = sd_ref.load_taesd(a.model)
    g = torch.Generator().manual_seed(0)
    lat = a.size // 8
    hidden = text.config.hidden_size
    image = torch.rand(1, 3, a.size, a.size, generator=g) * 2 - 1

    def op():
        if a.op == "unet":
            batch = 1 if a.cfg == 1.0 else 2  # CFG's uncond + cond pair, or cond alone
            x = torch.randn(batch, 4, lat, lat, generator=g)
            ctx = torch.randn(batch, 77, hidden, generator=g)
            t = torch.tensor(500.0)
            start = time.perf_counter(), time.process_time()
            unet(x, t, encoder_hidden_states=ctx)
        elif a.op == "vae-enc":
            start = time.perf_counter(), time.process_time()
            sd_ref.vae_encode_mean(vae, image)
        elif a.op == "vae-dec":
            x = torch.randn(1, 4, lat, lat, generator=g)
            start = time.perf_counter(), time.process_time()
            sd_ref.vae_decode(vae, x)
        else:
            start = time.perf_counter(), time.process_time()
            cond = sd_ref.encode_text(text, sd_ref.token_ids("a watercolor painting of a street"))
            uncond = sd_ref.encode_text(text, sd_ref.token_ids("blurry, lowres"))
            init = sd_ref.vae_encode_mean(vae, image)
            sigmas = sd_ref.img2img_sigmas(a.steps, a.denoise)
            x = init + torch.randn(init.shape, generator=g) * sigmas[0]
            noise = [torch.randn(init.shape, generator=g) for _ in range(len(sigmas))]
            x = sd_ref.sample(a.sampler, unet, x, sigmas, uncond, cond, a.cfg, noise)
            sd_ref.vae_decode(vae, x)
        return time.perf_counter() - start[0], time.process_time() - start[1]

    wall, cpu = op()
    print(json.dumps({"impl": "pytorch", "op": a.op, "size": a.size, "threads": a.threads,
                      "vae": a.vae, "steps": a.steps, "cfg": a.cfg,
                      "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "torch": torch.__version__, "mkl": torch.backends.mkl.is_available(),
                      "mkldnn": torch.backends.mkldnn.is_available(), "threadpools": blas_info()}), flush=True)


if __name__ == "__main__":
    main()
