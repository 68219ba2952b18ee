"""What LPIPS-alex rewards: a model's output as it is, with white noise added, or sharpened.

    python benchmarks/perceptual_vs_noise.py [--model srresnet-x4-real] [--dataset Set14] [--clean]

Upscales the real-world degraded LR (seed 0, as `srgan-eval --degradation realworld --seed 0`), or with `--clean`
the benchmarks' MATLAB-bicubic LR files, with the model,
then scores LPIPS-alex (`metrics.lpips`; needs the weights of `shared/models/lpips-alex`) and Y-PSNR of the output as
it is, with Gaussian noise of a few grey levels added (seeded), and after an unsharp mask. Noise carries no
information about the HR image; a metric that falls when it is added measures texture statistics as much as
closeness, and a model can lower it without coming closer. (The unweighted VGG19 distance we used before fell by
2.4% with 4 grey levels of noise: docs/experiments.md.)
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_inference import cpu_description  # benchmarks/ is this script's folder
from PIL import Image, ImageFilter
from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub.evaluate import load_folder
from srgan_hub.inference import load_model, upscale
from srgan_hub.metrics import load_lpips, lpips, psnr

SCALE = 4
NOISE_SIGMAS = (1, 2, 4, 8)  # grey levels
UNSHARP = ((1, 50), (2, 100))  # (radius, percent)


def with_noise(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    noisy = pixels + np.random.default_rng(seed).normal(0, sigma, pixels.shape)
    return Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="srresnet-x4-real", help="a model folder or bundled name")
    parser.add_argument("--dataset", default="Set14")
    parser.add_argument("--clean", action="store_true", help="the MATLAB-bicubic LR files instead of degraded LR")
    args = parser.parse_args()
    bench = shared_dir() / "data" / "benchmarks"
    lr_dir = bench / "LR_x4_matlab_bicubic" / args.dataset if args.clean else None
    pairs = load_folder(bench / args.dataset, SCALE, lr_dir, realworld_seed=None if args.clean else 0)
    lpips_model = load_lpips(shared_dir() / "models" / "lpips-alex")
    model = load_model(args.model)
    outputs = [upscale(pair.lr, model, dtype="fp32").convert("RGB") for pair in pairs]
    hrs = [pair.hr.convert("RGB") for pair in pairs]
    variants = {"as it is": lambda image, index: image}
    for sigma in NOISE_SIGMAS:
        variants[f"+ Gaussian noise, sigma {sigma}"] = lambda image, index, s=sigma: with_noise(image, s, index)
    for radius, percent in UNSHARP:
        variants[f"unsharp mask {radius} px, {percent}%"] = lambda image, index, r=radius, p=percent: image.filter(
            ImageFilter.UnsharpMask(r, p, 0)
        )
    print(cpu_description())
    inputs = "MATLAB-bicubic LR of" if args.clean else "degraded (seed 0)"
    print(f"{args.model} on {inputs} {args.dataset}, x4\n")
    print("| output | Y-PSNR (dB) | LPIPS-alex |\n|---|---|---|")
    for name, change in variants.items():
        changed = [change(image, index) for index, image in enumerate(outputs)]
        distance = np.mean([lpips(sr, hr, lpips_model) for sr, hr in zip(changed, hrs, strict=True)])
        y_psnr = np.mean([psnr(sr, hr, SCALE) for sr, hr in zip(changed, hrs, strict=True)])
        print(f"| {name} | {y_psnr:.2f} | {distance:.4f} |")


if __name__ == "__main__":
    main()
