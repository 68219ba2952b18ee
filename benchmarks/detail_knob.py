"""The detail knob along its range: sharpness ratio, Y-PSNR and LPIPS-alex of `upscale(..., detail=α)` on benchmark
sets' MATLAB-bicubic LR images, against a plain weight blend (ESRGAN's network interpolation as published) of the
same two generators.

    python benchmarks/detail_knob.py [--model srgan-x4] [--datasets Set5 Set14]

The sharpness ratio is the SR's luma gradient energy over the HR's (1 = as sharp as the truth), averaged over the
set's images. LPIPS-alex needs the weights of `shared/models/lpips-alex`. Runs in the automatic precision (bf16
where the CPU has it).
"""

from __future__ import annotations

import argparse
import functools

import numpy as np
import torch
from bench_inference import cpu_description  # benchmarks/ is this script's folder
from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub.evaluate import load_folder
from srgan_hub.inference import load_base_model, load_model, upscale
from srgan_hub.metrics import load_lpips, lpips, psnr, sharpness_ratio
from srgan_hub.models import SRGenerator

DETAILS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]


def plain_blends(gan: SRGenerator) -> list[SRGenerator]:
    """For each of DETAILS, every weight and BatchNorm statistic at (1 - detail) x the base model's + detail x the
    GAN's."""
    base, weights = load_base_model(gan).state_dict(), gan.state_dict()
    blends = []
    for detail in DETAILS:
        blended = SRGenerator(**gan.architecture())
        blended.load_state_dict(
            {
                name: torch.lerp(base[name], value, detail) if value.is_floating_point() else value
                for name, value in weights.items()
            }
        )
        blends.append(blended.eval())
    return blends


def mean(metric, outputs: list[list], pairs: list) -> list[float]:
    """`metric` averaged over the set, for each detail's outputs."""
    return [float(np.mean([metric(sr, pair.hr) for sr, pair in zip(srs, pairs, strict=True)])) for srs in outputs]


def row(label: str, values: list[float], digits: int) -> str:
    return f"| {label} | " + " | ".join(f"{value:.{digits}f}" for value in values) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="srgan-x4", help="a bundled GAN model's name, or a model folder")
    parser.add_argument("--datasets", nargs="+", default=["Set5", "Set14"])
    args = parser.parse_args()

    gan = load_model(args.model)
    bench = shared_dir() / "data" / "benchmarks"
    plain_models = plain_blends(gan)
    lpips_model = load_lpips(shared_dir() / "models" / "lpips-alex")
    print(f"{cpu_description()}\n{args.model} blended with {gan.base_model}\n")
    print("| | detail " + " | ".join(f"{d:g}" for d in DETAILS) + " |")
    print("|---|" + "---|" * len(DETAILS))
    for dataset in args.datasets:
        pairs = load_folder(bench / dataset, 4, bench / "LR_x4_matlab_bicubic" / dataset)
        shipped = [[upscale(pair.lr, gan, detail=d) for pair in pairs] for d in DETAILS]
        plain = [[upscale(pair.lr, blend) for pair in pairs] for blend in plain_models]

        print(row(f"{dataset} sharpness, plain weight blend", mean(sharpness_ratio, plain, pairs), 3))
        print(row(f"{dataset} sharpness, as shipped", mean(sharpness_ratio, shipped, pairs), 3))
        print(row(f"{dataset} Y-PSNR (dB), plain weight blend", mean(psnr, plain, pairs), 2))
        print(row(f"{dataset} Y-PSNR (dB), as shipped", mean(psnr, shipped, pairs), 2))
        lpips_alex = functools.partial(lpips, model=lpips_model)
        print(row(f"{dataset} LPIPS-alex, plain weight blend", mean(lpips_alex, plain, pairs), 4))
        print(row(f"{dataset} LPIPS-alex, as shipped", mean(lpips_alex, shipped, pairs), 4))


if __name__ == "__main__":
    main()
