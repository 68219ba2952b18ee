"""Console scripts: `srgan-upscale` (files, folders, globs -> upscaled images) and `srgan-eval` (benchmarks)."""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm

from srgan_hub.imageio import DEFAULT_MAX_PIXELS, list_images


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files, folders (their images, recursively) and glob patterns -> image files; and the inputs that matched
    nothing."""
    files, missing = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
        elif path.is_file():
            found = [path]
        else:
            found = [Path(p) for p in sorted(glob.glob(item, recursive=True)) if Path(p).is_file()]
        if not found:
            missing.append(item)
        files.extend(found)
    return list(dict.fromkeys(files)), missing


def output_path(source: Path, out_dir: Path, suffix: str, fmt: str | None, sixteen_bit: bool) -> Path:
    extension = (
        "png"
        if sixteen_bit
        else (
            fmt
            or (
                source.suffix.lower().lstrip(".")
                if source.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
                else "png"
            )
        )
    )
    return out_dir / f"{source.stem}{suffix}.{extension}"


def upscale_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="srgan-upscale",
        description="Upscale images with an SRGAN generator. Inputs may be files, folders (searched recursively) "
        "and glob patterns. Inputs are never overwritten; a file that fails is reported and skipped, "
        "and the exit status is 1 if any failed.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for the results (created if needed)")
    parser.add_argument("--model", help="model folder or Hub id (default: the bundled srgan-x4)")
    parser.add_argument("--tile", type=int, help="LR tile side in pixels (default: automatic; 0 = one pass)")
    parser.add_argument("--tile-overlap", type=int, help="LR context around each tile (default: seam-free margin)")
    parser.add_argument(
        "--format",
        choices=["png", "jpg", "webp"],
        help="output format (default: the input's if png/jpg/webp, else png; 16-bit stays png)",
    )
    parser.add_argument("--suffix", default=None, help="added to output file names (default: _x<scale>)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default=None,
        help="auto (default; or $SRGAN_HUB_PRECISION): fp16 on CUDA, bf16 on CPUs with bf16 units, else fp32",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse inputs with more pixels (default {DEFAULT_MAX_PIXELS:,})",
    )
    args = parser.parse_args(argv)

    from srgan_hub.imageio import InvalidImageError, save_image
    from srgan_hub.inference import NoBundledModelError, default_device_and_dtype, load_model, precision_name, upscale

    files, missing = expand_inputs(args.inputs)
    for item in missing:
        print(f"error: {item}: no such file, folder or matching image", file=sys.stderr)
    try:
        model = load_model(args.model)
    except (NoBundledModelError, OSError, ValueError) as error:
        print(f"error: cannot load model: {error}", file=sys.stderr)
        return 2
    device, dtype = default_device_and_dtype(args.device, args.precision)
    print(
        f"model {args.model or 'bundled default'} (x{model.scale}) on {device} in {precision_name(dtype)}",
        file=sys.stderr,
    )
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"_x{model.scale}" if args.suffix is None else args.suffix
    inputs = {f.resolve() for f in files}
    failed = len(missing)
    for source in tqdm(files, desc="upscaling", unit="image", disable=not files):
        try:
            result = upscale(
                source,
                model,
                tile=args.tile,
                tile_overlap=args.tile_overlap,
                device=device,
                dtype=dtype,
                max_pixels=args.max_pixels,
            )
            target = output_path(source, out_dir, suffix, args.format, not hasattr(result, "mode"))
            if target.resolve() in inputs:
                raise FileExistsError(f"output {target} would overwrite an input; use another --output-dir or --suffix")
            save_image(result, target)
        except (InvalidImageError, OSError, ValueError) as error:
            failed += 1
            tqdm.write(f"error: {source}: {error}", file=sys.stderr)
    done = len(files) - (failed - len(missing))
    print(f"{done} image(s) written to {out_dir}" + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def eval_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="srgan-eval",
        description="PSNR/SSIM (Y channel, BT.601, border = scale) of bicubic and of each model on folders of HR "
        "images, as the SR literature reports them. LR images are made with the MATLAB-compatible "
        "bicubic, or read from --lr-dir.",
    )
    parser.add_argument("--model", action="append", required=True, help="model folder or Hub id (repeatable)")
    parser.add_argument("--data", nargs="+", required=True, help="folders of HR images (e.g. Set5 Set14 BSD100)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--lr-dir", help="LR images: a folder per dataset (same names as --data), or one folder")
    parser.add_argument(
        "--json", help="write the results here (with colour shift, sub-pixel pattern and sharpness per method)"
    )
    parser.add_argument("--save-sr", help="save SR images under this folder (<dataset>/<model>/<image>.png)")
    parser.add_argument(
        "--update-card",
        action="store_true",
        help="write the results into each local model folder's README.md (model-index + table)",
    )
    parser.add_argument("--tile", type=int, help="LR tile side for inference (default: automatic)")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="fp32",
        help="inference precision (default fp32, the reference; bf16 moves Set5 by about 0.01 dB)",
    )
    parser.add_argument(
        "--vgg-weights", help="VGG19 weights file: adds the perceptual distance (LPIPS-style, on VGG19) to the results"
    )
    args = parser.parse_args(argv)

    from srgan_hub.evaluate import evaluate_benchmarks, markdown_table, write_results_to_card
    from srgan_hub.inference import load_model

    models = {}
    for spec in args.model:
        model = load_model(spec)
        if model.scale != args.scale:
            parser.error(f"{spec} is a x{model.scale} model, but --scale is {args.scale}")
        models[Path(spec).name if Path(spec).is_dir() else spec] = model
    vgg = None
    if args.vgg_weights:
        from srgan_hub.losses import load_vgg19

        vgg = load_vgg19(args.vgg_weights)
    results = evaluate_benchmarks(
        models, args.data, args.scale, args.lr_dir, args.save_sr, args.tile, args.precision, vgg
    )
    print(markdown_table(results, args.scale))
    if args.json:
        Path(args.json).write_text(json.dumps({"scale": args.scale, "results": results}, indent=2))
    if args.update_card:
        for spec, name in zip(args.model, models, strict=True):
            if Path(spec).is_dir():
                write_results_to_card(spec, results, name, args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(upscale_main())
