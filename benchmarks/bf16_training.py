"""Does bf16 training track fp32? Two SRResNet runs of train/train.py from the same seed and data, one in fp32
and one under bf16 autocast, with the Set5 validation PSNR of both printed side by side.

    python benchmarks/bf16_training.py [--steps 300] [--val-every 100] [--init-from models/srresnet-x4]

Each run is `accelerate launch --mixed_precision {no,bf16} train/train.py --stage srresnet ...` on BSDS200 + T91,
batch 16, written under runs/bf16-check/. Also prints each run's wall time: bf16 pays only on CPUs with bf16 units.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from shared_data import shared_dir  # benchmarks/ is this script's folder

ROOT = Path(__file__).resolve().parents[1]


def train(precision: str, args) -> tuple[dict[int, float], float]:
    """{step: Set5 PSNR} of one run, and its wall time in seconds."""
    data = shared_dir() / "data"
    launch = f"{Path(sys.executable).parent / 'accelerate'} launch --cpu --num_processes 1 --num_machines 1"
    command = launch.split() + ["--mixed_precision", precision, "--dynamo_backend", "no"]
    command += [str(ROOT / "train" / "train.py"), "--stage", "srresnet", "--seed", "0", "--num-workers", "1"]
    command += ["--dataset", str(data / "train" / "BSDS200"), str(data / "train" / "T91")]
    command += ["--output-dir", str(ROOT / "runs" / "bf16-check" / precision), "--max-steps", str(args.steps)]
    command += ["--val-dir", str(data / "benchmarks" / "Set5"), "--val-every", str(args.val_every)]
    command += ["--checkpoint-every", str(args.steps)] + (["--init-from", args.init_from] if args.init_from else [])
    start = time.perf_counter()
    log = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    found = re.findall(r"step (\d+): validation PSNR (\d+\.\d+) dB", log)
    return {int(step): float(psnr) for step, psnr in found}, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--val-every", type=int, default=100)
    parser.add_argument("--init-from", help="start both runs from this generator (default: random init)")
    args = parser.parse_args()
    fp32, fp32_seconds = train("no", args)
    bf16, bf16_seconds = train("bf16", args)
    print(f"SRResNet, batch 16, seed 0{', from ' + args.init_from if args.init_from else ''}: Set5 PSNR (dB)\n")
    print("| step | fp32 | bf16 autocast | bf16 - fp32 |")
    print("|---|---|---|---|")
    for step in sorted(fp32):
        print(f"| {step} | {fp32[step]:.2f} | {bf16[step]:.2f} | {bf16[step] - fp32[step]:+.2f} |")
    print(f"\nwall time: fp32 {fp32_seconds:.0f} s, bf16 {bf16_seconds:.0f} s ({fp32_seconds / bf16_seconds:.2f}x)")


if __name__ == "__main__":
    main()
