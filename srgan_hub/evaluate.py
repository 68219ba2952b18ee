"""Benchmark evaluation: PSNR/SSIM of bicubic and of models on folders of HR images.

For each HR image: crop to a multiple of the scale, take its LR (MATLAB-compatible bicubic, or a file of the same
name from `--lr-dir`), super-resolve, and score on the Y channel with a `scale`-pixel border removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan_hub.degradations import RealWorldDegradation, imresize
from srgan_hub.imageio import list_images
from srgan_hub.metrics import image_artefacts, lpips, psnr, ssim, summarise_artefacts


@dataclass
class Pair:
    name: str
    lr: Image.Image
    hr: Image.Image


def load_pair(hr_path: str | Path, scale: int = 4, lr_dir: str | Path | None = None) -> Pair:
    """HR (cropped to a multiple of `scale`, top-left, as the benchmarks' LR files were made) and its LR."""
    hr_path = Path(hr_path)
    with Image.open(hr_path) as img:
        hr = img.convert("L" if img.mode in ("L", "LA", "I;16") else "RGB")
    width, height = hr.size
    hr = hr.crop((0, 0, width - width % scale, height - height % scale))
    if lr_dir is not None:
        with Image.open(Path(lr_dir) / hr_path.name) as img:
            lr = img.convert(hr.mode)
        expected = (hr.width // scale, hr.height // scale)
        if lr.size != expected:
            raise ValueError(f"{Path(lr_dir) / hr_path.name} is {lr.size}, expected {expected} for x{scale}")
    else:
        lr = imresize(hr, 1 / scale)
    return Pair(hr_path.stem, lr, hr)


def bicubic_upscale(lr: Image.Image, scale: int) -> Image.Image:
    """The baseline every SR paper reports: bicubic interpolation back to HR size."""
    return lr.resize((lr.width * scale, lr.height * scale), Image.Resampling.BICUBIC)


def score(sr: Image.Image, hr: Image.Image, scale: int) -> dict[str, float]:
    if sr.mode != hr.mode:
        sr = sr.convert(hr.mode)
    return {"psnr": psnr(sr, hr, crop_border=scale), "ssim": ssim(sr, hr, crop_border=scale)}


def evaluate_pairs(
    pairs: list[Pair],
    super_resolve: Callable[[Image.Image], Image.Image],
    scale: int,
    save_dir: str | Path | None = None,
    progress=None,
    lpips_model=None,
) -> dict[str, float]:
    """Mean PSNR/SSIM of `super_resolve` over `pairs`, and what PSNR averages away: colour shift, sub-pixel
    (checkerboard) pattern and sharpness ratio (see `metrics.summarise_artefacts`); with an `lpips_model`
    (`metrics.load_lpips`), also the mean LPIPS-alex ("lpips"). Optionally saves the SR images as PNG."""
    scores, artefacts = [], []
    for pair in progress(pairs) if progress else pairs:
        sr = super_resolve(pair.lr)
        if save_dir is not None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            sr.save(Path(save_dir) / f"{pair.name}.png")
        scores.append(score(sr, pair.hr, scale))
        if lpips_model is not None:
            scores[-1]["lpips"] = lpips(sr, pair.hr, lpips_model)
        artefacts.append(image_artefacts(sr, pair.hr, scale))
    means = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
    return means | summarise_artefacts(artefacts) | {"images": len(scores)}


def load_folder(
    data_dir: str | Path, scale: int = 4, lr_dir: str | Path | None = None, realworld_seed: int | None = None
) -> list[Pair]:
    """The folder's (LR, HR) pairs; with `realworld_seed`, LR from Real-ESRGAN's degradation model instead of
    bicubic, the same for every run with that seed (each image's own generator, seeded by the seed and its
    position)."""
    files = list_images(data_dir)
    if not files:
        raise FileNotFoundError(f"no images in {data_dir}")
    pairs = [load_pair(f, scale, lr_dir) for f in files]
    if realworld_seed is not None:
        degrade = RealWorldDegradation(scale)
        for index, pair in enumerate(pairs):
            hr = torch.from_numpy(np.asarray(pair.hr.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
            lr = degrade(hr, torch.Generator().manual_seed(realworld_seed * 100_003 + index))
            pair.lr = Image.fromarray(np.round(lr[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).convert(
                pair.hr.mode
            )
    return pairs


def evaluate_benchmarks(
    models: dict,
    data_dirs: list[str],
    scale: int = 4,
    lr_dir: str | None = None,
    save_sr: str | None = None,
    tile: int | None = None,
    precision: str = "fp32",
    lpips_model=None,
    realworld_seed: int | None = None,
) -> dict[str, dict[str, dict]]:
    """results[dataset][method] (`evaluate_pairs`' PSNR, SSIM, artefacts and, with `lpips_model`, LPIPS-alex)
    for bicubic and each of `models` ({name: SRGenerator}) run in `precision`, with progress bars."""
    from tqdm.auto import tqdm

    from srgan_hub.inference import upscale

    results: dict[str, dict[str, dict]] = {}
    for data_dir in data_dirs:
        dataset = Path(data_dir).name
        pairs = load_folder(data_dir, scale, lr_folder_for(data_dir, lr_dir), realworld_seed)
        methods = {"bicubic": lambda lr: bicubic_upscale(lr, scale)}
        methods |= {
            name: (lambda lr, m=model: upscale(lr, m, tile=tile, dtype=precision)) for name, model in models.items()
        }
        results[dataset] = {}
        for method, super_resolve in methods.items():
            save_dir = Path(save_sr) / dataset / method if save_sr else None

            def bar(items, description=f"{dataset} / {method}"):
                return tqdm(items, desc=description, unit="image", leave=False)

            results[dataset][method] = evaluate_pairs(pairs, super_resolve, scale, save_dir, bar, lpips_model)
    return results


# --------------------------------------------------------------------------------------------------------------
# Tables and cards


def lr_folder_for(data_dir: str | Path, lr_dir: str | Path | None) -> Path | None:
    """`--lr-dir` may hold one folder per dataset (named like the HR folder) or the LR files themselves."""
    if lr_dir is None:
        return None
    per_dataset = Path(lr_dir) / Path(data_dir).name
    return per_dataset if per_dataset.is_dir() else Path(lr_dir)


def markdown_table(results: dict[str, dict[str, dict]], scale: int) -> str:
    """results[dataset][method] = {"psnr", "ssim", ["lpips"], ...} -> one row per method, PSNR / SSIM per dataset
    (and LPIPS-alex, where the results have it)."""
    datasets = list(results)
    methods = list(dict.fromkeys(m for per in results.values() for m in per))
    with_lpips = any("lpips" in scores for per in results.values() for scores in per.values())
    header = f"| x{scale}, Y-PSNR (dB) / SSIM{' / LPIPS-alex' if with_lpips else ''} | " + " | ".join(datasets) + " |"
    lines = [header, "|---|" + "---|" * len(datasets)]

    def cell(scores: dict | None) -> str:
        if scores is None:
            return "–"
        lpips = (f" / {scores['lpips']:.4f}" if "lpips" in scores else " / –") if with_lpips else ""
        return f"{scores['psnr']:.2f} / {scores['ssim']:.4f}{lpips}"

    for method in methods:
        cells = [cell(results[d].get(method)) for d in datasets]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


METRIC_NAMES = {
    "psnr": "PSNR (Y channel, border {scale})",
    "ssim": "SSIM (Y channel, border {scale})",
    "lpips": "LPIPS-alex (v0.1, whole RGB image)",
}


def write_results_to_card(
    model_dir: str | Path,
    results: dict[str, dict[str, dict]],
    method: str,
    scale: int,
    model_name: str | None = None,
    note: str = "",
    realworld_seed: int | None = None,
) -> None:
    """Put `method`'s results into the model folder's README.md: `model-index` metadata (the Hub's format) and a
    readable table (with bicubic beside it) in the Evaluation section. Results on clean bicubic LR and on
    real-world degraded LR (`realworld_seed`: the seed of `srgan-eval --degradation realworld`) are kept apart:
    each kind replaces only its own entries (degraded ones carry the dataset config `realworld-seed<N>`) and its
    own table."""
    from huggingface_hub import EvalResult, ModelCard

    card_path = Path(model_dir) / "README.md"
    card = ModelCard.load(card_path)
    card.data.model_name = model_name or Path(model_dir).name
    if realworld_seed is None:
        config, suffix, heading, lr_made = None, "", CLEAN_LR, "Bicubic LR"
    else:
        config, suffix = f"realworld-seed{realworld_seed}", " (real-world degraded)"
        heading = f"### Real-world degraded LR (seed {realworld_seed})"
        lr_made = (
            f"LR made by `srgan-eval --degradation realworld --seed {realworld_seed}` (Real-ESRGAN's second-order "
            "blur, resize, noise and JPEG, one fixed draw per image)"
        )
    kept = [result for result in card.data.eval_results or [] if result.dataset_config != config]
    card.data.eval_results = kept + [
        EvalResult(
            task_type="image-to-image",
            task_name=f"Image Super-Resolution x{scale}",
            dataset_type=dataset.lower(),
            dataset_name=dataset + suffix,
            dataset_config=config,
            metric_type=metric,
            metric_value=round(scores[method][metric], 4),
            metric_name=METRIC_NAMES[metric].format(scale=scale),
        )
        for dataset, scores in results.items()
        if method in scores
        for metric in METRIC_NAMES
        if metric in scores[method]
    ]
    table = markdown_table(
        {d: {m: s for m, s in per.items() if m in ("bicubic", method)} for d, per in results.items()}, scale
    )
    tables = evaluation_tables(card.text)
    tables[heading] = f"{lr_made}{': ' + note if note else ''}.\n\n{table}\n"
    section = (
        f"## Evaluation\n\nY-channel PSNR/SSIM (BT.601, {scale}-pixel border removed) and, where measured, "
        "LPIPS-alex (whole RGB image, lower is closer), with `srgan-eval`.\n\n"
        + "\n".join(f"{name}\n\n{body}" for name, body in sorted(tables.items(), key=lambda t: t[0] != CLEAN_LR))
        + "\n"
    )
    start, end = evaluation_span(card.text)
    card.text = card.text[:start] + section + card.text[end:] if start < end else card.text.rstrip() + "\n\n" + section
    card.save(card_path)


CLEAN_LR = "### Bicubic LR"


def evaluation_span(card_text: str) -> tuple[int, int]:
    """Where the card's Evaluation section starts and ends (up to the next `## ` section); (0, 0) if it has none."""
    start = card_text.find("## Evaluation")
    if start < 0:
        return 0, 0
    end = card_text.find("\n## ", start + 1)
    return start, end + 1 if end >= 0 else len(card_text)


def evaluation_tables(card_text: str) -> dict[str, str]:
    """The Evaluation section's tables by their `###` heading. A section written before results were split by
    kind holds one table of clean results: it is kept as the bicubic one."""
    start, end = evaluation_span(card_text)
    section = card_text[start:end]
    parts = section.split("\n### ")[1:]
    if not parts:
        table = section[section.find("\n|") + 1 :] if "\n|" in section else ""
        return {CLEAN_LR: f"Bicubic LR.\n\n{table.strip()}\n"} if table else {}
    tables = {}
    for part in parts:
        heading, body = part.split("\n", 1)
        tables[f"### {heading}"] = body.strip() + "\n"
    return tables
