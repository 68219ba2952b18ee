"""Evaluate the bundled models and publish the numbers: benchmarks/results_x4.json, the README, the model cards.

    python benchmarks/readme_results.py [--publish-only]

Runs the same evaluation as `srgan-eval --model models/<name> --data Set5 Set14 BSD100 Urban100_subset20
--lr-dir .../LR_x4_matlab_bicubic --lpips-weights ... --update-card` (fp32) and the same with `--degradation
realworld --seed 0` on Set14, BSD100 and Urban100_subset20, saves benchmarks/results_x4.json, writes both into
each model's card, and replaces the README's results section (between its markers) with `results_section(results)`:
PSNR / SSIM of bicubic, the bundled models and the paper; LPIPS-alex beside the published SRGAN and ESRGAN; on
Set14 the artefacts PSNR hides; then the same models on real-world degraded inputs (Real-ESRGAN's second-order
blur, resize, noise and JPEG, one fixed draw per image): Y-PSNR and LPIPS-alex.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shared_data import shared_dir  # benchmarks/ is this script's folder

from srgan_hub.evaluate import evaluate_benchmarks, markdown_table, write_results_to_card
from srgan_hub.inference import bundled_model_dir, load_model
from srgan_hub.metrics import load_lpips

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ["Set5", "Set14", "BSD100", "Urban100_subset20"]
MODELS = ["srresnet-x4", "srgan-x4", "srresnet-x4-real", "srgan-x4-real"]
DEGRADED = ["Set14", "BSD100", "Urban100_subset20"]
SEED = 0
PAPER = {  # Ledig et al. 2017, Table 2 (PSNR / SSIM), x4
    "paper: bicubic": {"Set5": (28.43, 0.8211), "Set14": (25.99, 0.7486), "BSD100": (25.94, 0.6935)},
    "paper: SRResNet": {"Set5": (32.05, 0.9019), "Set14": (28.49, 0.8184), "BSD100": (27.58, 0.7620)},
    "paper: SRGAN-MSE": {"Set5": (30.64, 0.8701), "Set14": (26.92, 0.7611)},
    "paper: SRGAN-VGG54": {"Set5": (29.40, 0.8472), "Set14": (26.02, 0.7397), "BSD100": (25.16, 0.6688)},
}
# LPIPS-alex as published in SPSR's README table (Ma et al., CVPR 2020), computed as ours is (whole RGB image);
# their Urban100 is the full set of 100 images, ours a subset of 20.
PUBLISHED_LPIPS = {
    "published: bicubic": {"Set5": 0.3407, "Set14": 0.4393, "BSD100": 0.5249, "Urban100_subset20": 0.4726},
    "published: SRGAN": {"Set5": 0.0882, "Set14": 0.1663, "BSD100": 0.1980, "Urban100_subset20": 0.1551},
    "published: ESRGAN": {"Set5": 0.0748, "Set14": 0.1329, "BSD100": 0.1614, "Urban100_subset20": 0.1229},
}
START, END = "<!-- results:start -->", "<!-- results:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS, help="benchmark folders (Set14 is needed)")
    parser.add_argument(
        "--lpips-weights", default=str(shared_dir() / "models" / "lpips-alex"), help="LPIPS-alex weights folder"
    )
    parser.add_argument(
        "--publish-only",
        action="store_true",
        help="write benchmarks/results_x4.json (as last measured) into the README and the cards, measuring nothing",
    )
    args = parser.parse_args()
    if "Set14" not in args.datasets:
        parser.error("--datasets must include Set14: the README's artefact table is measured on it")
    folders = {name: folder for name in MODELS if (folder := bundled_model_dir(name)) is not None}
    results_file = ROOT / "benchmarks" / "results_x4.json"
    if args.publish_only:
        published = json.loads(results_file.read_text())
    else:
        published = measure({name: load_model(str(folder)) for name, folder in folders.items()}, args)
        results_file.write_text(json.dumps(published, indent=2))
    note = "the benchmarks' MATLAB-bicubic x4 LR files"
    for name, folder in folders.items():
        write_results_to_card(folder, published["results"], name, 4, note=note)
        write_results_to_card(folder, published["realworld"], name, 4, realworld_seed=published["realworld_seed"])
    section = results_section(published)
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(START), readme.index(END) + len(END)
    (ROOT / "README.md").write_text(readme[:start] + section + readme[end:])
    print(section)


def measure(models: dict, args) -> dict:
    """The models (with bicubic) on the benchmarks' MATLAB-bicubic LR, and on real-world degraded LR."""
    bench = shared_dir() / "data" / "benchmarks"
    lr_dir, lpips_model = str(bench / "LR_x4_matlab_bicubic"), load_lpips(args.lpips_weights)
    results = {
        dataset: evaluate_benchmarks(models, [str(bench / dataset)], lr_dir=lr_dir, lpips_model=lpips_model)[dataset]
        for dataset in args.datasets
    }
    degraded = {
        dataset: evaluate_benchmarks(models, [str(bench / dataset)], lpips_model=lpips_model, realworld_seed=SEED)[
            dataset
        ]
        for dataset in DEGRADED
        if dataset in args.datasets
    }
    return {"scale": 4, "results": results, "realworld": degraded, "realworld_seed": SEED}


def results_section(published: dict) -> str:
    """The README's results, between its markers: the PSNR / SSIM table with the paper's rows, LPIPS-alex with
    the published rows, the Set14 table of what PSNR hides, and the real-world degraded table."""
    results = published["results"]
    table_input = {  # LPIPS-alex has its own table, with the published rows
        dataset: {method: {k: v for k, v in scores.items() if k != "lpips"} for method, scores in methods.items()}
        for dataset, methods in results.items()
    }
    for method, scores in PAPER.items():
        for dataset, (psnr, ssim) in scores.items():
            if dataset in table_input:
                table_input[dataset][method] = {"psnr": psnr, "ssim": ssim}
    return (
        f"{START}\n"
        "Measured with `python benchmarks/readme_results.py` (the code of `srgan-eval`, fp32; LR = the benchmarks'\n"
        "MATLAB-bicubic x4 files; Y-channel PSNR / SSIM, 4-pixel border). Paper rows are quoted from Ledig et al.\n\n"
        f"{markdown_table(table_input, 4)}\n\n{lpips_table(results)}\n\n{set14_table(results['Set14'])}\n\n"
        f"{degraded_table(published['realworld'], published['realworld_seed'])}\n{END}"
    )


def lpips_table(results: dict[str, dict[str, dict]]) -> str:
    """LPIPS-alex (lower is closer) of bicubic and the bundled models, with the published rows beside them."""
    datasets = list(results)
    methods = list(dict.fromkeys(m for per in results.values() for m in per))
    rows = [
        "LPIPS-alex (Zhang et al. 2018, v0.1; whole RGB image; lower is closer), the perceptual metric SR papers "
        "report. Published rows: SPSR's table (Ma et al. 2020), computed the same way; their Urban100 is the full "
        "set.\n",
        "| x4, LPIPS-alex | " + " | ".join(datasets) + " |",
        "|---|" + "---|" * len(datasets),
    ]
    for method in methods:
        rows.append(f"| {method} | " + " | ".join(f"{results[d][method]['lpips']:.4f}" for d in datasets) + " |")
    for method, scores in PUBLISHED_LPIPS.items():
        rows.append(f"| {method} | " + " | ".join(f"{scores[d]:.4f}" if d in scores else "–" for d in datasets) + " |")
    return "\n".join(rows)


def degraded_table(degraded: dict[str, dict[str, dict]], seed: int) -> str:
    """Real-world degraded inputs (the same fixed draw for every method): Y-PSNR and perceptual distance."""
    datasets = list(degraded)
    methods = list(dict.fromkeys(m for per in degraded.values() for m in per))
    rows = [
        f"Real-world degraded LR (`srgan-eval --degradation realworld --seed {seed}`): Y-PSNR (dB) / LPIPS-alex "
        "(lower is closer).\n",
        "| degraded x4 | " + " | ".join(datasets) + " |",
        "|---|" + "---|" * len(datasets),
    ]
    for method in methods:
        cells = [f"{degraded[d][method]['psnr']:.2f} / {degraded[d][method]['lpips']:.3f}" for d in datasets]
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def set14_table(set14: dict[str, dict]) -> str:
    """Set14, SR against HR: the worst channel's mean offset (colour shift), the fixed pattern over the 4x4
    sub-pixel phases (a PixelShuffle checkerboard), and SR's gradient energy over HR's (sharpness; MSE training
    blurs)."""
    rows = [
        "| Set14, x4 | colour shift (grey levels) | sub-pixel pattern (grey levels) | sharpness (SR / HR gradients) |",
        "|---|---|---|---|",
    ]
    for name, found in set14.items():
        rows.append(
            f"| {name} | {found['colour_shift']:.2f} | {found['phase_pattern']:.2f} | {found['sharpness']:.3f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
