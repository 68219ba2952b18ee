"""Real JPEGs, never trained on: does an upscaler magnify their 8x8 block structure?

    python benchmarks/real_jpegs.py [--count 20] [--figure benchmarks/real_jpeg_x4.png]

Inputs are crops of the Sun-Hays80 photographs (web JPEGs at about quality 75; kept out of every training set),
cut on the JPEG grid (offsets multiples of 8) so that the block edges stay where the encoder put them. For bicubic
and each bundled model (or each --model), prints the mean blockiness of the x4 outputs (`metrics.blockiness`: the
luma step across the input's block edges, mapped onto the output grid, over the step across its other pixel
edges; 1 means no grid) and its ratio to bicubic's, which keeps the input's own block edges without adding any.
`--figure` writes a comparison of the first images' crops, 1:1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub.evaluate import bicubic_upscale
from srgan_hub.inference import bundled_models_root, load_model, upscale
from srgan_hub.metrics import blockiness

ROOT = Path(__file__).resolve().parents[1]
BLOCK, SCALE = 8, 4


def grid_aligned_crop(path: Path, side: int) -> Image.Image:
    """The centre `side` x `side` crop, its corner on the JPEG's 8-pixel grid."""
    with Image.open(path) as image:
        left = (image.width - side) // 2 // BLOCK * BLOCK
        top = (image.height - side) // 2 // BLOCK * BLOCK
        return image.convert("RGB").crop((left, top, left + side, top + side))


def methods(folders: list[str]) -> dict[str, object]:
    """bicubic, then each model folder (default: the bundled ones)."""
    folders = folders or [str(p.parent) for p in sorted(bundled_models_root().glob("*/model.safetensors"))]
    return {"bicubic": None} | {Path(folder).name: load_model(folder) for folder in folders}


def save_figure(path: str, rows: list[dict[str, Image.Image]], tile: int = 256) -> None:
    label_height = 22
    names = list(rows[0])
    figure = Image.new("RGB", (tile * len(names), label_height + tile * len(rows)), "white")
    draw = ImageDraw.Draw(figure)
    for col, name in enumerate(names):
        draw.text((col * tile + 6, 4), name, fill="black")
        for row, outputs in enumerate(rows):
            figure.paste(outputs[name].crop((0, 0, tile, tile)), (col * tile, label_height + row * tile))
    figure.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20, help="photographs, in name order")
    parser.add_argument("--crop", type=int, default=128, help="input crop side (a multiple of 8)")
    parser.add_argument("--model", action="append", default=[], help="model folder (repeatable)")
    parser.add_argument("--figure", help="write the first photographs' 1:1 output crops here")
    args = parser.parse_args()
    photos = sorted((shared_dir() / "data" / "train" / "Sun_Hays80").glob("*.jpg"))[: args.count]
    upscalers = methods(args.model)
    scores: dict[str, list[float]] = {name: [] for name in ["input", *upscalers]}
    figure_rows = []
    for photo in photos:
        lr = grid_aligned_crop(photo, args.crop)
        scores["input"].append(blockiness(lr, 1))
        outputs = {}
        for name, model in upscalers.items():
            outputs[name] = bicubic_upscale(lr, SCALE) if model is None else upscale(lr, model)
            scores[name].append(blockiness(outputs[name], SCALE))
        if args.figure and len(figure_rows) < 2:
            figure_rows.append(outputs)
    bicubic = np.mean(scores["bicubic"])
    print(f"{len(photos)} Sun-Hays80 JPEGs, {args.crop}^2 crops on the 8x8 grid, x{SCALE}")
    print("| method | blockiness | vs bicubic |")
    print("|---|---|---|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.3f} | {np.mean(values) / bicubic:.2f}x |")
    if args.figure:
        save_figure(args.figure, figure_rows)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
