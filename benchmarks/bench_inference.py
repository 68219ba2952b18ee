"""Inference speed and memory of `upscale()` against a plain NCHW forward, measured in one run.

    python benchmarks/bench_inference.py            # full table (the 2048^2 memory run takes minutes)
    python benchmarks/bench_inference.py --quick    # small sizes only

Prints: the machine's practical fp32 peak (4096^2 matmul GFLOP/s), then per input size the time of `upscale()`,
its GFLOP/s (4.436 MFLOP per LR pixel for SRResNet x4) and % of that peak, the time of a plain NCHW forward of the
same model in the paper's layer order (the baseline: what a straightforward PyTorch SRResNet does), the speed-up,
and, for reference, `SRGenerator.forward` in NCHW (which already has the sub-pixel tail); then the peak RSS of a
fresh process upscaling a 2048^2 image with the default tiling. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import torch

from srgan_hub import SRGenerator, upscale

FLOP_PER_LR_PIXEL = 4.436e6  # SRResNet x4, 16 blocks, 64 channels (multiply-adds counted as 2)


def best_time(function, repeats: int, warm_up: bool = True) -> float:
    if warm_up:
        function()  # oneDNN picks and caches its kernels on the first call of a shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(n: int = 4096) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    return 2 * n**3 / best_time(lambda: a @ b, 5) / 1e9


# Peak RSS from VmHWM, the high-water mark of this process's own memory map. Not ru_maxrss: Linux carries that
# across exec from the parent's memory map (subprocess uses vfork), so it reported this benchmark's own peak.
RSS_SCRIPT = """
import re, sys, numpy as np
from srgan_hub import SRGenerator, upscale
size = int(sys.argv[1])
image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
out = upscale(image, SRGenerator().eval())
peak_kb = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print(out.size[0], int(peak_kb) / 1024)
"""


def tiled_peak_rss_mb(size: int) -> tuple[float, float]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(size)], capture_output=True, text=True, check=True)
    width, rss = result.stdout.split()
    assert int(width) == 4 * size
    return float(rss), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only 64^2 and 128^2, no 2048^2 memory run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [64, 128] if args.quick else [128, 256, 512]

    torch.manual_seed(0)
    model = SRGenerator().eval()
    peak = matmul_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul peak: {peak:.0f} GFLOP/s\n")
    print(
        "| LR input | upscale() s | GFLOP/s | % of matmul peak | plain NCHW forward s | speed-up "
        "| SRGenerator.forward NCHW s |"
    )
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for size in sizes:
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        ours = best_time(lambda image=image: upscale(image, model), args.repeats)
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        quick = size < 512  # a plain forward of 512^2 takes minutes: one cold run (kernel creation is <1% of it)
        repeats = args.repeats if quick else 1
        with torch.no_grad():
            plain = best_time(lambda x=x: model.forward_in_papers_layer_order(x), repeats, warm_up=quick)
            ours_nchw = best_time(lambda x=x: model(x), repeats, warm_up=quick)
        gflops = FLOP_PER_LR_PIXEL * size * size / ours / 1e9
        print(
            f"| {size}x{size} | {ours:.2f} | {gflops:.0f} | {100 * gflops / peak:.0f}% | {plain:.2f} | "
            f"{plain / ours:.2f}x | {ours_nchw:.2f} |"
        )
    if not args.quick:
        rss, seconds = tiled_peak_rss_mb(2048)
        print(f"\n2048x2048 -> 8192x8192 with default tiling: peak RSS {rss:.0f} MB (whole process), {seconds:.0f} s")


if __name__ == "__main__":
    main()
