"""Training throughput on this machine, measured in one run: the data pipeline alone, and the SRResNet and SRGAN
update steps in channels_last (what train.py uses) against NCHW (the baseline).

    python benchmarks/bench_training.py [--data DIR ...] [--steps 10]

Batch 16 of 96 px HR crops (24 px LR), Adam, as in the paper. Run it on an otherwise idle machine.
The SRResNet step is also put against the machine's fp32 matmul peak: a training step is about 3x the forward
FLOPs (forward, input gradients, weight gradients), 3 x 4.436 MFLOP per LR pixel.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench_inference import FLOP_PER_LR_PIXEL, matmul_gflops  # benchmarks/ is this script's folder

from srgan_hub import SRDiscriminator, SRGenerator
from srgan_hub.data import make_dataloader
from srgan_hub.losses import AdversarialLoss, pixel_mse

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train"


def data_crops_per_second(sources: list[str], batches: int, workers: int) -> float:
    loader = make_dataloader(sources, batch_size=16, crop_size=96, scale=4, num_workers=workers)
    stream = iter(loader)
    next(stream)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return 16 * batches / (time.perf_counter() - start)


def step_samples_per_second(stage: str, memory_format: torch.memory_format, steps: int) -> float:
    torch.manual_seed(0)
    generator = SRGenerator().train().to(memory_format=memory_format)
    g_optimizer = torch.optim.Adam(generator.parameters(), 1e-4, betas=(0.9, 0.999))
    if stage == "srgan":
        discriminator = SRDiscriminator().train().to(memory_format=memory_format)
        d_optimizer = torch.optim.Adam(discriminator.parameters(), 1e-4, betas=(0.9, 0.999))
        adversarial = AdversarialLoss("standard")
    lr = torch.rand(16, 3, 24, 24).contiguous(memory_format=memory_format)
    hr = torch.rand(16, 3, 96, 96).contiguous(memory_format=memory_format)

    def step():  # the update of train/train.py, without Accelerate's bookkeeping
        sr = generator(lr)
        loss = pixel_mse(sr, hr)
        if stage == "srgan":
            loss = loss + 1e-3 * adversarial.generator(None, discriminator(sr))
        loss.backward()
        g_optimizer.step()
        g_optimizer.zero_grad(set_to_none=True)
        if stage == "srgan":
            d_optimizer.zero_grad(set_to_none=True)
            real, fake = discriminator(torch.cat([hr, sr.detach()])).chunk(2)
            adversarial.discriminator(real, fake).backward()
            d_optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return 16 * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=[str(DATA / "BSDS200"), str(DATA / "T91")])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    peak = matmul_gflops()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul peak: {peak:.0f} GFLOP/s; "
        "batch 16, 96 px HR crops\n"
    )
    crops = data_crops_per_second(args.data, 4 * args.steps, args.workers)
    print("| what | NCHW (baseline) samples/s | channels_last samples/s | speed-up |")
    print("|---|---|---|---|")
    channels_last = {}
    for stage in ("srresnet", "srgan"):
        nchw = step_samples_per_second(stage, torch.contiguous_format, args.steps)
        channels_last[stage] = step_samples_per_second(stage, torch.channels_last, args.steps)
        print(f"| {stage} update step | {nchw:.1f} | {channels_last[stage]:.1f} | {channels_last[stage] / nchw:.2f}x |")
    batch_gflop = 3 * FLOP_PER_LR_PIXEL * 24 * 24 * 16 / 1e9
    achieved = channels_last["srresnet"] / 16 * batch_gflop
    print(
        f"\nSRResNet step: {batch_gflop:.0f} GFLOP per batch of 16; {achieved:.0f} GFLOP/s = "
        f"{100 * achieved / peak:.0f}% of the matmul peak; at 100% of it, {16 * peak / batch_gflop:.1f} samples/s."
    )
    consumed = max(channels_last.values())
    print(
        f"\nData pipeline alone ({args.workers} worker): {crops:.0f} crops/s = {crops / consumed:.0f}x what the "
        f"fastest training step consumes"
    )


if __name__ == "__main__":
    main()
