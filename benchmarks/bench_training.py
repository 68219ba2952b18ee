"""Training throughput on this machine, measured in one run: the data pipeline alone, and the SRResNet and SRGAN
update steps in fp32 NCHW (the baseline), fp32 channels_last, and channels_last under bf16 autocast (what
`accelerate launch --mixed_precision bf16 train/train.py` runs; it pays on CPUs with bf16 units).

    python benchmarks/bench_training.py [--data DIR ...] [--steps 10]

Batch 16 of 96 px HR crops (24 px LR), Adam, as in the paper. Run it on an otherwise idle machine.
The SRResNet step is also put against the machine's matmul peaks: a training step is about 3x the forward
FLOPs (forward, input gradients, weight gradients), 3 x 4.436 MFLOP per LR pixel.
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_inference import FLOP_PER_LR_PIXEL, cpu_description, matmul_gflops  # benchmarks/ is this script's folder

from srgan_hub import SRDiscriminator, SRGenerator
from srgan_hub.data import make_dataloader
from srgan_hub.evaluate import shared_dir
from srgan_hub.losses import AdversarialLoss, pixel_mse

DATA = shared_dir() / "data" / "train"


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
        adversarial = AdversarialLoss("standard")
    lr = torch.rand(16, 3, 24, 24).contiguous(memory_format=memory_format)
    hr = torch.rand(16, 3, 96, 96).contiguous(memory_format=memory_format)

    def step():  # the update of train/train.py, without Accelerate's bookkeeping
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            sr = generator(lr)
            loss = pixel_mse(sr.float(), hr)
            if stage == "srgan":
                loss = loss + 1e-3 * adversarial.generator(None, discriminator(sr).float())
        loss.backward()
        g_optimizer.step()
        g_optimizer.zero_grad(set_to_none=True)
        if stage == "srgan":
            d_optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                real, fake = discriminator(torch.cat([hr, sr.detach()])).float().chunk(2)
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

    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"{cpu_description()}; torch {torch.__version__}")
    print(
        f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; batch 16, 96 px HR crops\n"
    )
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


if __name__ == "__main__":
    main()
