"""Console scripts: `srgan-upscale` (files, folders, globs -> upscaled images) and `srgan-eval` (benchmarks)."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from srgan_hub.imageio import DEFAULT_MAX_PIXELS, list_images, list_non_images

UPSCALE_HELP = (
    "Upscale images with an SRGAN generator. Inputs may be files, folders (searched recursively) and glob "
    "patterns. Inputs are never overwritten; a file that fails is reported and skipped, and the exit status is 1 "
    "if any failed."
)
EVAL_HELP = (
    "PSNR/SSIM (Y channel, BT.601, border = scale) and, with --lpips-weights, LPIPS-alex of bicubic and of each model "
    "on folders of HR images, as the SR literature reports them. LR images are made with the MATLAB-compatible "
    "bicubic, or read from --lr-dir."
)


@dataclass
class Inputs:
    files: list[Path]  # image files, in order, each once
    folders: dict[Path, Path]  # file -> the folder it was found in (its output mirrors the folder's tree)
    missing: list[str]  # inputs that matched nothing
    skipped: list[Path]  # files in the folders that are not images Pillow reads


def expand_inputs(inputs: list[str]) -> Inputs:
    """Files, folders (their images, recursively) and glob patterns -> image files, and what was left out."""
    found = Inputs([], {}, [], [])
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = list_images(path)
            found.folders |= {file: path for file in matches}
            found.skipped += list_non_images(path)
        elif path.is_file():
            matches = [path]
        else:
            matches = [Path(p) for p in sorted(glob.glob(item, recursive=True)) if Path(p).is_file()]
        if not matches and not path.is_dir():
            found.missing.append(item)
        found.files.extend(matches)
    found.files = list(dict.fromkeys(found.files))
    return found


def plan_outputs(inputs: Inputs, out_dir: Path, suffix: str) -> dict[Path, Path]:
    """Each input's output path without its extension: `out_dir`/<sub-folder of a folder input>/<stem><suffix>.
    Inputs that would share one (a.gif and a.png; x.png from two places) keep their extension in the name too
    (a_gif_x4, a_png_x4), so that no output overwrites another."""
    base = {}
    for source in inputs.files:
        folder = inputs.folders.get(source)
        sub = source.parent.relative_to(folder) if folder is not None else Path()
        base[source] = out_dir / sub / source.stem
    shared = Counter(str(path).lower() for path in base.values())
    return {
        source: path.with_name(f"{path.name}_{source.suffix.lstrip('.').lower()}{suffix}")
        if shared[str(path).lower()] > 1
        else path.with_name(path.name + suffix)
        for source, path in base.items()
    }


def output_extension(source: Path, fmt: str | None, sixteen_bit: bool) -> str:
    if sixteen_bit:
        return "png"
    return fmt or (
        source.suffix.lower().lstrip(".") if source.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") else "png"
    )


def add_precision_option(parser: argparse.ArgumentParser, default: str | None, explanation: str) -> None:
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default=default,
        help=f"inference precision: {explanation}",
    )


def report_error(source: Path, error: Exception) -> None:
    message = str(error)
    tqdm.write(f"error: {message if str(source) in message else f'{source}: {message}'}", file=sys.stderr)


def upscale_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srgan-upscale", description=UPSCALE_HELP)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for the results (created if needed)")
    parser.add_argument(
        "--model",
        help="model folder, bundled model name (srgan-x4, srresnet-x4, srresnet-x4-real) or Hub id "
        "(default: the bundled srgan-x4)",
    )
    parser.add_argument("--tile", type=int, help="LR tile side in pixels (default: automatic; 0 = one pass)")
    parser.add_argument("--tile-overlap", type=int, help="LR context around each tile (default: seam-free margin)")
    parser.add_argument(
        "--format",
        choices=["png", "jpg", "webp"],
        help="output format (default: the input's if png/jpg/webp, else png; 16-bit stays png)",
    )
    parser.add_argument("--suffix", default=None, help="added to output file names (default: _x<scale>)")
    parser.add_argument(
        "--detail",
        type=float,
        help="0-1: blend a GAN model with the PSNR model it was fine-tuned from (0 = smooth and faithful, 1 = the GAN)",
    )
    parser.add_argument("--outscale", type=float, help="output scale, 1 to the model's (default: the model's)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    add_precision_option(
        parser, None, "auto (default; or $SRGAN_HUB_PRECISION): fp16 on CUDA, bf16 on CPUs with bf16 units, else fp32"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse inputs with more pixels (default {DEFAULT_MAX_PIXELS:,})",
    )
    return parser


def upscale_main(argv: list[str] | None = None) -> int:
    parser = upscale_parser()
    args = parser.parse_args(argv)

    from srgan_hub.inference import (
        NoBaseModelError,
        NoBundledModelError,
        blend_with_base,
        default_device_and_dtype,
        load_model,
        precision_name,
    )

    inputs = expand_inputs(args.inputs)
    for item in inputs.missing:
        print(f"error: {item}: no such file, folder or matching image", file=sys.stderr)
    if inputs.skipped:
        names = ", ".join(p.name for p in inputs.skipped[:5]) + (", ..." if len(inputs.skipped) > 5 else "")
        print(f"note: skipped {len(inputs.skipped)} file(s) that are not images Pillow reads: {names}", file=sys.stderr)
    try:
        model = load_model(args.model)
    except (NoBundledModelError, OSError, ValueError) as error:
        print(f"error: cannot load model: {error}", file=sys.stderr)
        return 2
    device, dtype = default_device_and_dtype(args.device, args.precision)
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, the main process speaks for all
        print(f"model {args.model or 'bundled default'} (x{model.scale}) in {precision_name(dtype)}", file=sys.stderr)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.detail is not None:
        try:
            blend_with_base(model, args.detail)
        except (NoBaseModelError, OSError, ValueError) as error:
            print(f"error: --detail: {error}", file=sys.stderr)
            return 2
    if args.outscale is not None and not 1 <= args.outscale <= model.scale:
        print(f"error: --outscale must be between 1 and the model's scale {model.scale}", file=sys.stderr)
        return 2
    suffix = f"_x{args.outscale or model.scale:g}" if args.suffix is None else args.suffix
    targets = plan_outputs(inputs, out_dir, suffix)
    share, distributed = this_process_share(inputs.files)
    if distributed is not None and args.device is None:
        device = distributed.device
    written, failed = upscale_files(share, targets, model, args, device, dtype, distributed)
    failed += len(inputs.missing)
    if distributed is not None:  # one summary, for all processes
        from accelerate.utils import gather_object

        counts = gather_object([(written, failed)])
        written, failed = sum(c[0] for c in counts), max(c[1] for c in counts)
        # A live gloo/NCCL group torn down by interpreter exit aborts the process ("terminate called ...").
        distributed.wait_for_everyone()
        distributed.destroy_process_group()
        if not distributed.is_main_process:
            return 1 if failed else 0
    print(f"{written} image(s) written to {out_dir}" + (f", {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def this_process_share(files: list[Path]):
    """Under `accelerate launch` with several processes (GPUs, nodes, or CPU processes), this process's share of
    `files` (Accelerate's split_between_processes) and the process state; otherwise all files and None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return files, None
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # as Accelerator() reads it
    with state.split_between_processes(files) as share:
        return list(share), state


def upscale_files(
    files: list[Path], targets: dict[Path, Path], model, args, device, dtype, distributed
) -> tuple[int, int]:
    """Upscale and save each file; report each failure and go on. Returns (written, failed)."""
    from srgan_hub.imageio import InvalidImageError, save_image
    from srgan_hub.inference import upscale

    sources = {source.resolve() for source in targets}
    written = failed = 0
    hide = not files or (distributed is not None and not distributed.is_main_process)  # one progress bar
    for source in tqdm(files, desc="upscaling", unit="image", disable=hide):
        try:
            result = upscale(
                source,
                model,
                tile=args.tile,
                tile_overlap=args.tile_overlap,
                device=device,
                dtype=dtype,
                max_pixels=args.max_pixels,
                detail=args.detail,
                outscale=args.outscale,
            )
            sixteen_bit = not hasattr(result, "mode") or result.mode == "I;16"
            extension = output_extension(source, args.format, not hasattr(result, "mode"))
            target = targets[source].with_name(f"{targets[source].name}.{extension}")
            if target.resolve() in sources:
                raise FileExistsError(f"output {target} would overwrite an input; use another --output-dir or --suffix")
            if sixteen_bit and extension != "png":
                tqdm.write(
                    f"note: {source} is 16-bit; its {extension} output has 8 bits (use --format png)", file=sys.stderr
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            save_image(result, target)
            written += 1
        except (InvalidImageError, OSError, ValueError) as error:
            failed += 1
            report_error(source, error)
    return written, failed


def eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srgan-eval", description=EVAL_HELP)
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
    add_precision_option(parser, "fp32", "default fp32, the reference; bf16 moves Set5 by about 0.01 dB")
    parser.add_argument(
        "--lpips-weights",
        metavar="DIR",
        help="folder with LPIPS-alex's weights (alexnet_features.safetensors, lpips_v0.1_alex_lin.safetensors): "
        "adds LPIPS-alex, the perceptual metric SR papers report, to the results",
    )
    parser.add_argument(
        "--degradation",
        choices=["bicubic", "realworld"],
        default="bicubic",
        help="LR images: MATLAB bicubic (or --lr-dir), or Real-ESRGAN's real-world degradations with --seed",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the real-world degradations")
    return parser


def eval_main(argv: list[str] | None = None) -> int:
    parser = eval_parser()
    args = parser.parse_args(argv)

    from srgan_hub.evaluate import evaluate_benchmarks, markdown_table, write_results_to_card
    from srgan_hub.inference import load_model

    models = {}
    for spec in args.model:
        model = load_model(spec)
        if model.scale != args.scale:
            parser.error(f"{spec} is a x{model.scale} model, but --scale is {args.scale}")
        models[Path(spec).name if Path(spec).is_dir() else spec] = model
    lpips_model = None
    if args.lpips_weights:
        from srgan_hub.metrics import load_lpips

        try:
            lpips_model = load_lpips(args.lpips_weights)
        except (OSError, ValueError) as error:
            parser.error(f"--lpips-weights: {error}")
    if args.degradation == "realworld" and args.lr_dir:
        parser.error("--lr-dir gives bicubic LR files; --degradation realworld makes its own LR")
    realworld_seed = args.seed if args.degradation == "realworld" else None
    results = evaluate_benchmarks(
        models, args.data, args.scale, args.lr_dir, args.save_sr, args.tile, args.precision, lpips_model, realworld_seed
    )
    print(markdown_table(results, args.scale))
    if args.json:
        Path(args.json).write_text(json.dumps({"scale": args.scale, "results": results}, indent=2))
    if args.update_card:
        for spec, name in zip(args.model, models, strict=True):
            if Path(spec).is_dir():
                write_results_to_card(spec, results, name, args.scale, realworld_seed=realworld_seed)
    return 0


EXPORT_HELP = (
    "Export a generator to ONNX (onnxruntime, chaiNNer) or NCNN (Upscayl, chaiNNer): RGB in [0, 1] in and out, "
    "BatchNorm folded, any image size. NCNN files use Upscayl's conventions (blobs data/output, the scale in the "
    "file name) and need the pnnx converter (pip install pnnx)."
)


def export_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="srgan-export", description=EXPORT_HELP)
    parser.add_argument("model", help="model folder, bundled model name (e.g. srgan-x4) or Hub id")
    parser.add_argument("--format", choices=["onnx", "ncnn"], required=True)
    parser.add_argument("-o", "--output-dir", default=".", help="folder for the exported files (default: here)")
    parser.add_argument("--name", help="file name stem (default: the model's name; -x<scale> is added if missing)")
    parser.add_argument("--force", action="store_true", help="overwrite files of an earlier export")
    args = parser.parse_args(argv)

    from srgan_hub.export import ExportError, export
    from srgan_hub.inference import load_model

    try:
        model = load_model(args.model)
    except (OSError, ValueError) as error:
        print(f"error: {args.model} is not a model folder, bundled model or Hub id: {error}", file=sys.stderr)
        return 2
    name = args.name or Path(args.model.rstrip("/")).name
    try:
        files = export(model, args.format, args.output_dir, name, force=args.force, source=args.model.rstrip("/"))
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(upscale_main())
