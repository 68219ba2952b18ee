"""The README's comparison figure: bicubic | SRResNet | SRGAN | SRGAN real-world | HR on crops of benchmark
images (x4), each crop labelled with its LPIPS-alex against the HR crop (lower is closer).

    python benchmarks/comparison_figure.py [--out benchmarks/comparison_x4.png]

LR inputs are the benchmarks' MATLAB-bicubic x4 files from ../shared/data; models are the bundled folders.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw
from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub.evaluate import bicubic_upscale
from srgan_hub.inference import bundled_model_dir, load_model, upscale
from srgan_hub.metrics import load_lpips, lpips

ROOT = Path(__file__).resolve().parents[1]
BENCH = shared_dir() / "data" / "benchmarks"
# (dataset, image, HR crop box (left, top, size)): texture, edges and text-like detail
CROPS = [
    ("Set14", "baboon", (300, 40, 160)),
    ("Set5", "butterfly", (60, 60, 160)),
    ("Set14", "comic", (20, 120, 160)),
    ("Urban100_subset20", "img_006", (400, 400, 160)),
]


def column_models() -> list[tuple[str, object]]:
    columns: list[tuple[str, object]] = [("bicubic", None)]
    for folder, label in (("srresnet-x4", "SRResNet"), ("srgan-x4", "SRGAN"), ("srgan-x4-real", "SRGAN real-world")):
        if (found := bundled_model_dir(folder)) is not None:
            columns.append((label, load_model(str(found))))
    return columns + [("HR", "hr")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "comparison_x4.png"))
    args = parser.parse_args()
    columns = column_models()
    lpips_model = load_lpips(shared_dir() / "models" / "lpips-alex")
    tile, label_height = 160, 22
    figure = Image.new("RGB", (tile * len(columns), label_height + tile * len(CROPS)), "white")
    draw = ImageDraw.Draw(figure)
    for col, (label, _) in enumerate(columns):
        draw.text((col * tile + 6, 4), label, fill="black")
    for row, (dataset, name, (left, top, size)) in enumerate(CROPS):
        hr = Image.open(BENCH / dataset / f"{name}.png").convert("RGB")
        lr = Image.open(BENCH / "LR_x4_matlab_bicubic" / dataset / f"{name}.png").convert("RGB")
        box = (left, top, left + size, top + size)
        for col, (_, model) in enumerate(columns):
            if model is None:
                result = bicubic_upscale(lr, 4)
            elif model == "hr":
                result = hr
            else:
                result = upscale(lr, model)
            crop, x, y = result.crop(box), col * tile, label_height + row * tile
            figure.paste(crop.resize((tile, tile), Image.Resampling.NEAREST), (x, y))
            if model != "hr":
                draw.rectangle((x, y + tile - 16, x + 92, y + tile), fill="white")
                draw.text((x + 4, y + tile - 14), f"LPIPS {lpips(crop, hr.crop(box), lpips_model):.3f}", fill="black")
    figure.save(args.out)
    print(f"wrote {args.out} ({', '.join(label for label, _ in columns)})")


if __name__ == "__main__":
    main()
