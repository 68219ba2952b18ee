"""Which parts of a fine-tuned generator carry its artefacts: each part's fine-tuned weights put into the model it
was fine-tuned from, the rest left as they were, and the result scored on a benchmark set's MATLAB-bicubic LR
images (fp32).

    python benchmarks/generator_parts.py runs/srgan-vgg54-x4 [--base models/srresnet-x4] [--dataset Set5]

A part that brings the fine-tuned model's sub-pixel pattern or colour shift with it is where that artefact was
learned; a training run can then leave that part alone. The parts are the generator's own modules (input conv,
residual blocks, the conv + BatchNorm closing the trunk, the x2 sub-pixel stages, the output conv) and the
BatchNorm running statistics.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bench_inference import cpu_description  # benchmarks/ is this script's folder

from srgan_hub.evaluate import evaluate_pairs, load_folder, shared_dir
from srgan_hub.inference import load_base_model, load_model, upscale
from srgan_hub.models import SRGenerator

PARTS: dict[str, Callable[[str], bool]] = {
    "the input conv": lambda name: name.startswith("head."),
    "the residual blocks": lambda name: name.startswith("body."),
    "the trunk's closing conv + BatchNorm": lambda name: name.startswith("body_tail."),
    "the LR trunk (all three above)": lambda name: name.startswith(("head.", "body.", "body_tail.")),
    "the x2 sub-pixel stages": lambda name: name.startswith("upsample."),
    "the output conv": lambda name: name.startswith("tail."),
    "the sub-pixel stages and the output conv": lambda name: name.startswith(("upsample.", "tail.")),
    "the BatchNorm running statistics": lambda name: "running_" in name,
}


def with_part(base: SRGenerator, tuned: SRGenerator, in_part: Callable[[str], bool]) -> SRGenerator:
    """`base` with the tensors that `in_part` names taken from `tuned`."""
    tuned_state = tuned.state_dict()
    mixed = SRGenerator(**base.architecture())
    mixed.load_state_dict({name: tuned_state[name] if in_part(name) else v for name, v in base.state_dict().items()})
    return mixed.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tuned", help="the fine-tuned generator (a model folder or a bundled model's name)")
    parser.add_argument("--base", help="the model it was fine-tuned from (default: its config's base_model)")
    parser.add_argument("--dataset", default="Set5")
    args = parser.parse_args()

    tuned = load_model(args.tuned)
    base = load_model(args.base) if args.base else load_base_model(tuned)
    bench = shared_dir() / "data" / "benchmarks"
    pairs = load_folder(bench / args.dataset, 4, bench / "LR_x4_matlab_bicubic" / args.dataset)
    rows = {"nothing (the base model)": base, "everything (the fine-tuned model)": tuned}
    rows |= {part: with_part(base, tuned, in_part) for part, in_part in PARTS.items()}

    print(f"{cpu_description()}\n{args.tuned} (fine-tuned) and {args.base or tuned.base_model} (base), {args.dataset}")
    print("\n| fine-tuned part | Y-PSNR (dB) | sharpness | sub-pixel pattern | colour shift |")
    print("|---|---|---|---|---|")
    for label, model in rows.items():
        m = evaluate_pairs(pairs, lambda lr, model=model: upscale(lr, model, dtype="fp32"), 4)
        print(
            f"| {label} | {m['psnr']:.2f} | {m['sharpness']:.3f} | {m['phase_pattern']:.2f} | {m['colour_shift']:.2f} |"
        )


if __name__ == "__main__":
    main()
