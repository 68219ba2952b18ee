"""Where bf16 inference's last grey levels come from: a bundled model run with chosen parts in fp32 and the rest
in bf16, against fp32, on a benchmark set's MATLAB-bicubic LR images.

    python benchmarks/bf16_error.py [--model srgan-x4] [--dataset Set14]

Prints, per split, the output values (R, G, B, or gray) 3 and 4 or more grey levels away from the fp32 output, the
largest difference, and the time of a 256^2 forward. The row "as shipped" is `prepare_for_inference`'s own split
(the input conv and the first residual block in fp32); the other rows put a pre-hook on every conv that casts its
input to the conv's dtype. Every row runs through `upscale_planes`, the pipeline of `upscale()`. bf16 kernels differ
between CPUs (AVX512-BF16, AMX), so rerun this on a new kind of host.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from bench_inference import best_time, cpu_description  # benchmarks/ is this script's folder
from shared_data import shared_dir  # benchmarks/ is this script's folder
from torch import nn

from srgan_hub.evaluate import load_folder
from srgan_hub.imageio import read_planes
from srgan_hub.inference import load_model, prepare_for_inference, upscale_planes
from srgan_hub.models import SRGenerator

CPU = torch.device("cpu")


def split(reference: SRGenerator, fp32_parts: list[nn.Module]) -> SRGenerator:
    """A copy of the fp32-prepared `reference` with every layer in bf16 except `fp32_parts` (parts of `reference`)."""
    keep = {name for name, module in reference.named_modules() for part in fp32_parts if module is part}
    net = copy.deepcopy(reference).to(torch.bfloat16)
    for name, module in net.named_modules():
        if any(name == kept or name.startswith(kept + ".") for kept in keep):
            module.float()
    for conv in (m for m in net.modules() if isinstance(m, nn.Conv2d)):
        conv.register_forward_pre_hook(lambda conv, args: (args[0].to(conv.weight.dtype),))
    # The output conv is applied through F.conv2d (conv_after_pixel_shuffle): cast its input where it is made.
    net.upsample[-1][-1].register_forward_hook(lambda _, __, out: out.to(net.tail.weight.dtype))
    return net


def outputs(net: SRGenerator, inputs: list) -> np.ndarray:
    """All output values of `net` on the read LR images, as one integer array."""
    return np.concatenate([np.asarray(upscale_planes(net, planes), np.int16).ravel() for planes in inputs])


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="srgan-x4", help="a bundled model's name, or a model folder")
    parser.add_argument("--dataset", default="Set14")
    args = parser.parse_args()

    bench = shared_dir() / "data" / "benchmarks"
    pairs = load_folder(bench / args.dataset, 4, bench / "LR_x4_matlab_bicubic" / args.dataset)
    inputs = [read_planes(pair.lr) for pair in pairs]
    model = load_model(args.model)
    fp32 = prepare_for_inference(model, CPU, torch.float32)
    blocks = list(fp32.body)
    splits = {
        "nothing (all bf16)": split(fp32, []),
        "the input conv": split(fp32, [fp32.head]),
        "the first residual block": split(fp32, blocks[:1]),
        "the input conv, both x2 stages and the output conv": split(fp32, [fp32.head, fp32.upsample, fp32.tail]),
        "residual blocks 9-16": split(fp32, blocks[8:]),
        "the input conv and the first residual block (as shipped)": prepare_for_inference(model, CPU, torch.bfloat16),
        "the input conv and residual blocks 1-8": split(fp32, [fp32.head, *blocks[:8]]),
    }
    reference = outputs(fp32, inputs)
    probe = torch.rand(1, 3, 256, 256).contiguous(memory_format=torch.channels_last)

    print(f"{cpu_description()}\n{args.model} on {args.dataset} ({len(pairs)} images), bf16 against fp32\n")
    print("| in fp32 | >= 3 levels | >= 4 levels | max | 256^2 forward (s) |")
    print("|---|---|---|---|---|")
    for name, net in splits.items():
        difference = np.abs(outputs(net, inputs) - reference)
        seconds = best_time(lambda net=net: net(probe), 2)
        print(
            f"| {name} | {(difference >= 3).sum()} | {(difference >= 4).sum()} | {difference.max()} | {seconds:.2f} |"
        )
    print(f"| everything (fp32) | 0 | 0 | 0 | {best_time(lambda: fp32(probe), 2):.2f} |")


if __name__ == "__main__":
    main()
