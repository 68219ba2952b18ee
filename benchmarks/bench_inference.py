"""Inference speed and memory of `upscale()` in fp32 and in the automatic precision, against a plain NCHW
forward, measured in one run.

    python benchmarks/bench_inference.py            # full table (the 2048^2 memory run takes minutes)
    python benchmarks/bench_inference.py --quick    # small sizes only

Prints the CPU and its instruction sets (AVX2 / AVX-512 / AVX512-BF16 / AMX), the practical fp32 and bf16 peaks
(4096^2 matmul GFLOP/s), then per input size the time of `upscale()` in fp32 and in the automatic precision (bf16
on CPUs with bf16 units, else fp32), their GFLOP/s (4.436 MFLOP per LR pixel for SRResNet x4) as % of the same
precision's peak, the time of a plain fp32 NCHW forward in the paper's layer order (the baseline: what a
straightforward PyTorch SRResNet does), and the time of the `srgan-export --format onnx` file in onnxruntime (fp32,
as many threads as torch), for users choosing a runtime; then the peak RSS of a fresh process upscaling a 2048^2
image with the default tiling, in the automatic precision. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from srgan_hub import SRGenerator, upscale
from srgan_hub.export import export_onnx
from srgan_hub.inference import default_device_and_dtype, precision_name

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


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 4096) -> float:
    a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
    return 2 * n**3 / best_time(lambda: a @ b, 5) / 1e9


def cpu_description() -> str:
    """The CPU's model name and the instruction sets that decide the precision."""
    flags, name = set(), platform.processor()
    for line in open("/proc/cpuinfo").read().splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        elif line.startswith("model name") and name in ("", platform.machine()):
            name = line.split(":", 1)[1].strip()
    sets = [
        label
        for flag, label in [
            ("avx2", "AVX2"),
            ("avx512f", "AVX-512"),
            ("avx512_bf16", "AVX512-BF16"),
            ("amx_bf16", "AMX-BF16"),
        ]
        if flag in flags
    ]
    return f"{name}, {torch.get_num_threads()} threads, {' / '.join(sets) or 'no AVX2'}"


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


def onnxruntime_session(model: SRGenerator, folder: str):
    """`model` exported as srgan-export writes it, in an onnxruntime session with torch's thread count."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return onnxruntime.InferenceSession(str(export_onnx(model, Path(folder) / "model.onnx")), options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only 64^2 and 128^2, no 2048^2 memory run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [64, 128] if args.quick else [128, 256, 512]

    torch.manual_seed(0)
    model = SRGenerator().eval()
    auto = precision_name(default_device_and_dtype("cpu")[1])
    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"{cpu_description()}; torch {torch.__version__}")
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s; automatic: {auto}\n")
    print(
        f"| LR input | plain NCHW forward s (baseline) | upscale() fp32 s | % of fp32 peak | upscale() auto ({auto}) s "
        f"| % of {auto} peak | auto vs fp32 | auto vs baseline | onnxruntime fp32 s | auto vs onnxruntime |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    session = onnxruntime_session(model, tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    for size in sizes:
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        fp32 = best_time(lambda image=image: upscale(image, model, dtype="fp32"), args.repeats)
        fastest = best_time(lambda image=image: upscale(image, model, dtype="auto"), args.repeats)
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        quick = size < 512  # a plain forward of 512^2 takes minutes: one cold run (kernel creation is <1% of it)
        with torch.no_grad():
            plain = best_time(lambda x=x: model.forward_in_papers_layer_order(x), args.repeats if quick else 1, quick)
        ort = best_time(lambda x=x: session.run(["output"], {"input": x.numpy()}), args.repeats)
        flop = FLOP_PER_LR_PIXEL * size * size / 1e9
        print(
            f"| {size}x{size} | {plain:.2f} | {fp32:.2f} | {100 * flop / fp32 / peaks['fp32']:.0f}% | {fastest:.2f} | "
            f"{100 * flop / fastest / peaks[auto]:.0f}% | {fp32 / fastest:.2f}x | {plain / fastest:.2f}x | {ort:.2f} | "
            f"{ort / fastest:.2f}x |"
        )
    if not args.quick:
        rss, seconds = tiled_peak_rss_mb(2048)
        print(
            f"\n2048x2048 -> 8192x8192, default tiling, {auto}: peak RSS {rss:.0f} MB (whole process), {seconds:.0f} s"
        )


if __name__ == "__main__":
    main()
