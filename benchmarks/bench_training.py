"""Training throughput on this machine, measured in one run: the data pipeline alone, and the SRResNet and SRGAN
update steps in fp32 NCHW (the baseline), fp32 channels_last, and channels_last under bf16 autocast (what
`accelerate launch --mixed_precision bf16 train/train.py` runs; it pays on CPUs with bf16 units).

Then the SRGAN-VGG54 update (φ5,4 content loss + 1e-3 x adversarial, from srresnet-x4) split by part: data and LR,
G forward, VGG loss forward, D forward, G backward (through the VGG and D), D backward, optimizer steps, in fp32 and
bf16: the plain step (a second D forward on the detached SR for D's update) against train.py's (one verdict of D
trains both players), with the paper's D and with `--discriminator vgg`.

    python benchmarks/bench_training.py [--data DIR ...] [--steps 10] [--gan-steps 6]

Batch 16 of 96 px HR crops (24 px LR), Adam, as in the paper. Run it on an otherwise idle machine.
The SRResNet step is also put against the machine's matmul peaks: a training step is about 3x the forward
FLOPs (forward, input gradients, weight gradients), 3 x 4.436 MFLOP per LR pixel.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import torch
from bench_inference import FLOP_PER_LR_PIXEL, cpu_description, matmul_gflops  # benchmarks/ is this script's folder
from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub import SRDiscriminator, SRGenerator
from srgan_hub.data import make_dataloader
from srgan_hub.degradations import TrainingDegradation
from srgan_hub.losses import ContentLoss, discriminator_loss, generator_adversarial_loss, pixel_mse
from srgan_hub.models import VGGFeatureDiscriminator
from srgan_hub.training import discriminator_verdict

DATA = shared_dir() / "data" / "train"
VGG_WEIGHTS = shared_dir() / "models" / "vgg19" / "vgg19_imagenet_conv.safetensors"
SRRESNET = Path(__file__).resolve().parents[1] / "models" / "srresnet-x4"
PARTS = ("data + LR", "G forward", "VGG loss forward", "D forward", "G backward", "D backward", "optimizer steps")


def data_crops_per_second(sources: list[str], batches: int, workers: int) -> float:
    loader = make_dataloader(sources, batch_size=16, crop_size=96, scale=4, num_workers=workers)
    stream = iter(loader)
    next(stream)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return 16 * batches / (time.perf_counter() - start)


def step_samples_per_second(stage: str, memory_format: torch.memory_format, steps: int, bf16: bool = False) -> float:
    torch.manual_seed(0)
    generator = SRGenerator().train().to(memory_format=memory_format)
    g_optimizer = torch.optim.Adam(generator.parameters(), 1e-4, betas=(0.9, 0.999))
    if stage == "srgan":
        discriminator = SRDiscriminator().train().to(memory_format=memory_format)
        d_optimizer = torch.optim.Adam(discriminator.parameters(), 1e-4, betas=(0.9, 0.999))
    lr = torch.rand(16, 3, 24, 24).contiguous(memory_format=memory_format)
    hr = torch.rand(16, 3, 96, 96).contiguous(memory_format=memory_format)

    def step():  # the update of train/train.py, without Accelerate's bookkeeping
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            sr = generator(lr)
            loss = pixel_mse(sr.float(), hr)
            if stage == "srgan":
                loss = loss + 1e-3 * generator_adversarial_loss(discriminator(sr).float())
        loss.backward()
        g_optimizer.step()
        g_optimizer.zero_grad(set_to_none=True)
        if stage == "srgan":
            d_optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                real, fake = discriminator(torch.cat([hr, sr.detach()])).float().chunk(2)
            discriminator_loss(real, fake).backward()
            d_optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return 16 * steps / (time.perf_counter() - start)


VARIANTS = {
    "plain (baseline)": "the paper's D, judging the detached SR again for its own update",
    "train.py, --discriminator paper": "the paper's D, one verdict for both updates",
    "train.py, --discriminator vgg": "heads on the VGG features of the content loss, one verdict",
}


class GANStep:
    """One of `VARIANTS` of the SRGAN-VGG54 update, with its own models, timed by part (`PARTS`)."""

    def __init__(self, variant: str, bf16: bool, sources: list[str]):
        torch.manual_seed(0)
        cl = torch.channels_last
        self.generator = SRGenerator.from_pretrained(str(SRRESNET)).train().to(memory_format=cl)
        vgg_d = variant.endswith("vgg")
        self.discriminator = (VGGFeatureDiscriminator() if vgg_d else SRDiscriminator()).train().to(memory_format=cl)
        self.optimizers = [torch.optim.Adam(m.parameters(), 1e-4) for m in (self.generator, self.discriminator)]
        extra = self.discriminator.taps if vgg_d else ()
        self.content_loss = ContentLoss("vgg54", vgg_weights=VGG_WEIGHTS, extra_layers=extra)
        self.degrade = TrainingDegradation("bicubic", 4, "cpu", seed=0)
        self.batches = iter(make_dataloader(sources, batch_size=16, crop_size=96, scale=4, num_workers=1))
        self.one_verdict, self.bf16, self.seconds = variant != "plain (baseline)", bf16, Counter()

    @contextmanager
    def part(self, name: str):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            yield
        self.seconds[name] += time.perf_counter() - start

    def step(self) -> None:
        g_optimizer, d_optimizer = self.optimizers
        with self.part("data + LR"):
            hr = next(self.batches)["hr"].contiguous(memory_format=torch.channels_last)
            lr = self.degrade(hr).contiguous(memory_format=torch.channels_last)
        with self.part("G forward"):
            sr = self.generator(lr)
        with self.part("VGG loss forward"):
            features = self.content_loss.features(sr, hr)
            content = self.content_loss(sr, hr, features)
        with self.part("D forward"):
            real, fake = discriminator_verdict(self.discriminator, hr, sr, features, roll=True)
            g_loss = content + 1e-3 * generator_adversarial_loss(fake)
        with self.part("G backward"):
            g_loss.backward(inputs=list(self.generator.parameters()), retain_graph=self.one_verdict)
        with self.part("optimizer steps"):
            g_optimizer.step()
            g_optimizer.zero_grad(set_to_none=True)
        if not self.one_verdict:  # the plain step: D judges the detached SR again for its own update
            with self.part("D forward"):
                real, fake = discriminator_verdict(self.discriminator, hr, sr.detach(), features, roll=True)
        with self.part("D backward"):
            discriminator_loss(real, fake).backward(inputs=list(self.discriminator.parameters()))
        with self.part("optimizer steps"):
            d_optimizer.step()
            d_optimizer.zero_grad(set_to_none=True)


def print_gan_split(sources: list[str], steps: int) -> None:
    """The variants' updates interleaved (one of each in turn), so that a slower spell of the host weighs on all."""
    print(f"\nSRGAN-VGG54 update, batch 16 of 96 px crops, seconds per update ({steps} of each, interleaved)")
    for name, meaning in VARIANTS.items():
        print(f"- {name}: {meaning}")
    print(f"\n| step | precision | {' | '.join(PARTS)} | total | vs plain fp32 | vs plain, same precision |")
    print("|---|---|" + "---|" * (len(PARTS) + 3))
    runs = {
        (precision, v): GANStep(v, precision == "bf16", sources) for precision in ("fp32", "bf16") for v in VARIANTS
    }
    for run in runs.values():
        run.step()  # the first update creates the kernels
        run.seconds.clear()
    for _ in range(steps):
        for run in runs.values():
            run.step()
    totals = {key: sum(run.seconds.values()) / steps for key, run in runs.items()}
    for (precision, variant), run in runs.items():
        plain_fp32, plain = totals["fp32", "plain (baseline)"], totals[precision, "plain (baseline)"]
        cells = " | ".join(f"{run.seconds[p] / steps:.3f}" for p in PARTS)
        total = totals[precision, variant]
        print(f"| {variant} | {precision} | {cells} | {total:.2f} | {plain_fp32 / total:.2f}x | {plain / total:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=[str(DATA / "BSDS200"), str(DATA / "T91")])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gan-steps", type=int, default=6, help="SRGAN-VGG54 updates timed per variant")
    parser.add_argument("--gan-only", action="store_true", help="only the SRGAN-VGG54 split")
    args = parser.parse_args()

    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"{cpu_description()}; torch {torch.__version__}")
    print(
        f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; batch 16, 96 px HR crops\n"
    )
    if args.gan_only:
        print_gan_split(args.data, args.gan_steps)
        return
    crops = data_crops_per_second(args.data, 4 * args.steps, args.workers)
    print(
        "| update step | fp32 NCHW (baseline) samples/s | fp32 channels_last | bf16 autocast channels_last "
        "| bf16 vs fp32 channels_last |"
    )
    print("|---|---|---|---|---|")
    rates = {}
    for stage in ("srresnet", "srgan"):
        nchw = step_samples_per_second(stage, torch.contiguous_format, args.steps)
        fp32 = step_samples_per_second(stage, torch.channels_last, args.steps)
        bf16 = step_samples_per_second(stage, torch.channels_last, args.steps, bf16=True)
        rates[stage] = {"fp32": fp32, "bf16": bf16}
        print(f"| {stage} | {nchw:.1f} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f}x |")
    batch_gflop = 3 * FLOP_PER_LR_PIXEL * 24 * 24 * 16 / 1e9
    for precision, peak in peaks.items():
        achieved = rates["srresnet"][precision] / 16 * batch_gflop
        print(
            f"\nSRResNet step, {precision}: {batch_gflop:.0f} GFLOP per batch of 16; {achieved:.0f} GFLOP/s = "
            f"{100 * achieved / peak:.0f}% of the {precision} matmul peak."
        )
    consumed = max(rate for stage in rates.values() for rate in stage.values())
    print(
        f"\nData pipeline alone ({args.workers} worker): {crops:.0f} crops/s = {crops / consumed:.0f}x what the "
        f"fastest training step consumes"
    )
    print_gan_split(args.data, args.gan_steps)


if __name__ == "__main__":
    main()
