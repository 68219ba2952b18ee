"""Where the adversarial gradient lands in the generator, next to the content loss's, layer group by layer group.

    python benchmarks/gan_gradients.py runs/srgan-x4/checkpoints/checkpoint-500 [--batches 4] [--weight 1e-3]

Loads an SRGAN training checkpoint's raw generator and discriminator (`model.safetensors`, `model_1.safetensors`,
beside its `generator/` folder), draws training batches as `train/train.py` does (BSDS200 + T91, 96 px HR crops,
batch 16), and prints, per group of G's layers, the norm of the content (MSE) gradient, the norm of the weighted
adversarial gradient (the paper's non-saturating loss, D judging HR and SR in one batch as in training), their
ratio and their cosine. Adam scales each weight's step by its own gradient history, so the ratio says which of the
two losses steers that group. D's view is not rolled (`--d-random-shift` changes where D's pattern lands, not how
large its gradient is).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from srgan_hub import SRDiscriminator, SRGenerator
from srgan_hub.data import make_dataloader
from srgan_hub.losses import AdversarialLoss, pixel_mse

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
GROUPS = ("head", "body.", "body_tail", "upsample", "tail")


def load_checkpoint(checkpoint: Path) -> tuple[SRGenerator, SRDiscriminator]:
    generator = SRGenerator.from_pretrained(checkpoint / "generator")  # architecture (the EMA weights)
    generator.load_state_dict(load_file(checkpoint / "model.safetensors"))  # the raw generator
    discriminator = SRDiscriminator()  # train.py's D (strict loading below refuses any other)
    discriminator.load_state_dict(load_file(checkpoint / "model_1.safetensors"))
    return generator, discriminator


def gradient_split(generator, discriminator, lr, hr, weight: float) -> dict[str, tuple[float, float, float]]:
    """{group: (|content gradient|, |weight x adversarial gradient|, cosine)} for one batch."""
    sr = generator(lr)
    real_logits, fake_logits = discriminator(torch.cat([hr, sr])).chunk(2)
    losses = {
        "content": pixel_mse(sr, hr),
        "adversarial": weight * AdversarialLoss("standard").generator(real_logits.detach(), fake_logits),
    }
    named = list(generator.named_parameters())
    grads = {key: torch.autograd.grad(loss, [p for _, p in named], retain_graph=True) for key, loss in losses.items()}
    split = {}
    for group in (*GROUPS, "all"):
        picked = [i for i, (name, _) in enumerate(named) if group == "all" or name.startswith(group)]
        content = torch.cat([grads["content"][i].flatten() for i in picked])
        adversarial = torch.cat([grads["adversarial"][i].flatten() for i in picked])
        cosine = torch.dot(content, adversarial) / (content.norm() * adversarial.norm())
        split[group.rstrip(".")] = (content.norm().item(), adversarial.norm().item(), cosine.item())
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a checkpoint-N folder of an SRGAN run")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--weight", type=float, default=1e-3, help="the adversarial weight")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator, discriminator = load_checkpoint(args.checkpoint)
    discriminator.train()  # as in training: BatchNorm on the batch's statistics
    loader = make_dataloader(
        [str(DATA / "BSDS200"), str(DATA / "T91")], batch_size=16, crop_size=96, scale=4, num_workers=0, seed=1
    )
    splits = [
        gradient_split(generator, discriminator, batch["lr"], batch["hr"], args.weight)
        for _, batch in zip(range(args.batches), loader, strict=False)
    ]
    print(f"{args.checkpoint}, {args.batches} batches of 16, adversarial weight {args.weight:g} (means)\n")
    print("| layers | content gradient | adversarial gradient | ratio | cosine |\n|---|---|---|---|---|")
    for group in splits[0]:
        content, adversarial, cosine = (sum(s[group][k] for s in splits) / len(splits) for k in range(3))
        print(f"| {group} | {content:.2e} | {adversarial:.2e} | {adversarial / content:.2f} | {cosine:+.2f} |")


if __name__ == "__main__":
    main()
