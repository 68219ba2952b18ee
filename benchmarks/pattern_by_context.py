"""Where does a GAN generator's sub-pixel pattern live: in the context its training crops showed it, or beyond?

    python benchmarks/pattern_by_context.py --model runs/NAME [--model ...] [--dataset Set14] [--tile 24]

A training crop of 96 HR pixels is 24 LR pixels, narrower than the generator's receptive field (printed first: 80 LR
pixels for 16 residual blocks), so in training every output pixel sees the zero padding of a crop border. On a whole
image most pixels see none. For each model, prints the sub-pixel pattern (`metrics.subpixel_phase_pattern`,
summarised as `srgan-eval` does) of x4 outputs of whole images, and of the same LR images cut into `--tile` x
`--tile` tiles that are upscaled one by one and put back together, on the clean MATLAB-bicubic LR and on the
real-world degraded LR (seed 0). A pattern on whole images that the tiles do not show comes from the context
training never showed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from bench_inference import cpu_description  # benchmarks/ is this script's folder
from PIL import Image

from srgan_hub.evaluate import load_folder, shared_dir
from srgan_hub.inference import load_model, upscale
from srgan_hub.metrics import artefact_metrics

SCALE = 4


def upscale_by_tiles(lr: Image.Image, model, tile: int) -> Image.Image:
    """`lr` cut into `tile` x `tile` tiles (the last row and column as they fall), each upscaled on its own."""
    sr = Image.new("RGB", (lr.width * SCALE, lr.height * SCALE))
    for top in range(0, lr.height, tile):
        for left in range(0, lr.width, tile):
            box = (left, top, min(left + tile, lr.width), min(top + tile, lr.height))
            sr.paste(upscale(lr.crop(box), model, dtype="fp32"), (left * SCALE, top * SCALE))
    return sr


def receptive_field(model) -> int:
    """The side, in LR pixels, of the input region that one output pixel's gradient reaches."""
    lr = torch.rand(1, 3, 160, 160, requires_grad=True)
    (gradient,) = torch.autograd.grad(model.eval()(lr)[0, :, 320, 320].sum(), lr)  # no gradients on the weights
    reached = gradient.abs().sum(dim=(0, 1)).nonzero()
    return int(reached[:, 0].max() - reached[:, 0].min() + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a model folder or bundled name")
    parser.add_argument("--dataset", default="Set14")
    parser.add_argument("--tile", type=int, default=24, help="LR tile side (default: a 96 px HR crop's LR)")
    args = parser.parse_args()
    bench = shared_dir() / "data" / "benchmarks"
    inputs = {
        "clean": load_folder(bench / args.dataset, SCALE, bench / "LR_x4_matlab_bicubic" / args.dataset),
        "degraded": load_folder(bench / args.dataset, SCALE, realworld_seed=0),
    }
    hrs = [pair.hr.convert("RGB") for pair in inputs["clean"]]  # the same HR images under both inputs
    print(cpu_description())
    print(f"receptive field of {Path(args.model[0]).name}: {receptive_field(load_model(args.model[0]))} LR pixels")
    print(f"{args.dataset}, x4 sub-pixel pattern (grey levels): whole images | {args.tile} px LR tiles\n")
    print("| model | clean LR | degraded LR (seed 0) |\n|---|---|---|")
    for name in args.model:
        model, cells = load_model(name), []
        for pairs in inputs.values():
            whole = [upscale(pair.lr.convert("RGB"), model, dtype="fp32") for pair in pairs]
            tiled = [upscale_by_tiles(pair.lr.convert("RGB"), model, args.tile) for pair in pairs]
            patterns = [artefact_metrics(srs, hrs, SCALE)["phase_pattern"] for srs in (whole, tiled)]
            cells.append(f"{patterns[0]:.2f} / {patterns[1]:.2f}")
        print(f"| {Path(name).name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
