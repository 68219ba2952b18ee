"""Where a generator's sub-pixel pattern sits in a training crop: its interior, or the edge where it meets zero padding.

    python benchmarks/pattern_at_crop_edges.py [--model train/in_progress/srgan-vgg54] [--crops 192]

Takes random 96-px crops of the training photos (BSDS200, seeded, as `data.random_crops` takes them), makes each
crop's LR from the crop alone (MATLAB bicubic, as training does), super-resolves it and prints the sub-pixel phase
pattern (`metrics.subpixel_phase_pattern`: the mean of SR - HR at each of the 4 x 4 output phases, less their mean,
in grey levels) over the whole crops, over their interior (two LR pixels in from each side, what
`losses.phase_mean_error` holds) and over that edge ring alone. A term balanced over whole crops can leave the
interior's pattern, the one a full image shows, in place: its edge pattern pays for it.
"""

from __future__ import annotations

import argparse
import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub.data import random_crops
from srgan_hub.degradations import bicubic_downsample
from srgan_hub.inference import load_model

SCALE, CROP = 4, 96
MARGIN = 2 * SCALE  # two LR pixels, as losses.phase_mean_error leaves out


def phase_pattern(residual: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """4 x 4 mean of `residual` (N x 3 x H x W, grey levels) over the masked pixels at each phase, less their mean."""
    sums = F.pixel_unshuffle(residual.mean(1, keepdim=True) * mask, SCALE).sum(dim=(0, 2, 3))
    phases = (sums / F.pixel_unshuffle(mask.expand_as(residual[:, :1]), SCALE).sum(dim=(0, 2, 3))).view(SCALE, SCALE)
    return (phases - phases.mean()).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="train/in_progress/srgan-vgg54", help="a model folder or bundled name")
    parser.add_argument("--crops", type=int, default=192)
    args = parser.parse_args()
    rng = random.Random(0)
    photos = sorted((shared_dir() / "data" / "train" / "BSDS200").glob("*.png"))
    crops = [random_crops(Image.open(rng.choice(photos)).convert("RGB"), CROP, 1, rng)[0] for _ in range(args.crops)]
    hr = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    model = load_model(args.model).eval()
    with torch.no_grad():
        residual = torch.cat([model(bicubic_downsample(batch, SCALE)) - batch for batch in hr.split(16)]) * 255
    interior = torch.zeros(1, 1, CROP, CROP)
    interior[..., MARGIN:-MARGIN, MARGIN:-MARGIN] = 1
    print(f"{args.model}: sub-pixel pattern of {args.crops} training crops of {CROP} px (grey levels)\n")
    print("| region | largest phase offset | 4 x 4 phases, row by row |\n|---|---|---|")
    regions = {"whole crop": torch.ones_like(interior), "interior": interior, "edge ring": 1 - interior}
    for region, mask in regions.items():
        pattern = phase_pattern(residual, mask)
        rows = " / ".join(" ".join(f"{value:+.2f}" for value in row) for row in pattern)
        print(f"| {region} | {np.abs(pattern).max():.2f} | {rows} |")


if __name__ == "__main__":
    main()
