"""How hard each content loss pulls on SR: the weights of the other terms move with it when the content loss changes.

    python benchmarks/loss_balance.py [--model train/in_progress/srgan-x4-real] [--degradation realworld]

Takes seeded 96-px crops of the training photos (BSDS200, batches of 16, as training takes them), makes their LR as
training does (`TrainingDegradation`, 30% clean crops for `realworld`), super-resolves them with --model and prints,
per batch, each content loss and the norm of its gradient with respect to SR, with the ratio to the paper's φ5,4
loss. Adam is blind to the scale of the whole loss, not to the balance of its terms: a content loss that pulls N
times harder than φ5,4 keeps a φ5,4 recipe's balance with the adversarial and phase weights multiplied by N.
"""

from __future__ import annotations

import argparse
import random

import numpy as np
import torch
from PIL import Image
from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub.data import random_crops
from srgan_hub.degradations import TrainingDegradation
from srgan_hub.inference import load_model
from srgan_hub.losses import ContentLoss

CROP, BATCH = 96, 16
LOSSES = ("vgg54", "realesrgan")


def loss_and_gradient_norm(loss: ContentLoss, sr: torch.Tensor, hr: torch.Tensor) -> tuple[float, float]:
    sr = sr.detach().requires_grad_()
    value = loss(sr, hr)
    (gradient,) = torch.autograd.grad(value, sr)
    return value.item(), gradient.norm().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="train/in_progress/srgan-x4-real", help="a model folder or bundled name")
    parser.add_argument("--degradation", choices=["bicubic", "realworld"], default="realworld")
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(0)
    photos = sorted((shared_dir() / "data" / "train" / "BSDS200").glob("*.png"))
    vgg_weights = shared_dir() / "models" / "vgg19" / "vgg19_imagenet_conv.safetensors"
    losses = {kind: ContentLoss(kind, vgg_weights=vgg_weights) for kind in LOSSES}
    degrade = TrainingDegradation(args.degradation, 4, "cpu", seed=0, clean_prob=0.3 * (args.degradation != "bicubic"))
    model = load_model(args.model).eval()
    print(f"{args.model}, {args.degradation} LR: content losses of SR and the norm of their gradient w.r.t. SR\n")
    print("| batch | " + " | ".join(f"{kind}: loss / gradient" for kind in LOSSES) + " | gradient ratio to vgg54 |")
    print("|---|" + "---|" * (len(LOSSES) + 1))
    for batch in range(args.batches):
        crops = [random_crops(Image.open(rng.choice(photos)).convert("RGB"), CROP, 1, rng)[0] for _ in range(BATCH)]
        hr = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            sr = model(degrade(hr))
        measured = {kind: loss_and_gradient_norm(loss, sr, hr) for kind, loss in losses.items()}
        cells = " | ".join(f"{value:.4g} / {norm:.4g}" for value, norm in measured.values())
        ratio = measured["realesrgan"][1] / measured["vgg54"][1]
        print(f"| {batch} | {cells} | {ratio:.1f} |")


if __name__ == "__main__":
    main()
