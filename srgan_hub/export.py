"""Export a generator to the runtimes people upscale with: ONNX (onnxruntime, chaiNNer) and NCNN (Upscayl,
chaiNNer).

Both exports compute the same function as `upscale(..., dtype="fp32")` on a whole image: RGB float input in
[0, 1], N x 3 x H x W of any height and width, output in [0, 1] at `scale` times the size (the model's
(tanh + 1) / 2 inside). BatchNorm is folded into the convolutions first, and the network is written in the paper's
layer order (9x9 conv after the last PixelShuffle), which every runtime has plain operators for.

NCNN files follow Upscayl's custom-model convention, which Real-ESRGAN's NCNN models set: input blob `data`,
output blob `output`, and the scale in the file name (`srgan-x4.param` + `srgan-x4.bin`). They are converted
with `pnnx` (PyPI), which is imported only for this format.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from srgan_hub.models import SRGenerator

FORMATS = ("onnx", "ncnn")
ONNX_OPSET = 18
NCNN_BLOBS = {"in0": "data", "out0": "output"}  # pnnx's blob names -> Upscayl's


class ExportError(ValueError):
    """An export that cannot be made as asked: the output would overwrite files, or a converter is missing."""


class PaperOrderGenerator(nn.Module):
    """An eval-mode copy of a generator with BatchNorm folded, computing `forward_in_papers_layer_order`."""

    def __init__(self, model: SRGenerator):
        super().__init__()
        from srgan_hub.inference import fold_batchnorm

        self.net = fold_batchnorm(copy.deepcopy(model).float().eval()).requires_grad_(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net.forward_in_papers_layer_order(image)


def export_name(model: SRGenerator, name: str) -> str:
    """A file stem that carries the scale as Upscayl reads it: `name`, with `-x<scale>` added if it lacks it."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "srgan"
    return stem if re.search(rf"x{model.scale}(?!\d)", stem) else f"{stem}-x{model.scale}"


def export_onnx(model: SRGenerator, path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Write `model` as one ONNX file with dynamic batch, height and width (input `input`, output `output`)."""
    path = Path(path)
    example = torch.rand(1, 3, 32, 32)
    batch, height, width = (torch.export.Dim(n, min=1) for n in ("batch", "height", "width"))
    with torch.inference_mode(False), quiet_logger("torch.onnx"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the exporter's own use of deprecated pytree names
        program = torch.onnx.export(
            PaperOrderGenerator(model).eval(),
            (example,),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamic_shapes={"image": {0: batch, 2: height, 3: width}},
            dynamo=True,
            verbose=False,
        )
    program.save(str(path))
    return path


@contextlib.contextmanager
def quiet_logger(name: str):
    """Silence a library's warnings for a while (the ONNX exporter lists the torchvision operators it skips)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def stderr_to(path: Path):
    """Send this process's file descriptor 2 (which a converter's subprocess inherits) to `path` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "wb") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def export_ncnn(model: SRGenerator, folder: str | Path, stem: str) -> tuple[Path, Path]:
    """Write `<stem>.param` and `<stem>.bin` into `folder` through pnnx, with Upscayl's blob names."""
    try:
        import pnnx
    except ImportError as error:
        raise ExportError(f"the NCNN export needs the pnnx converter: pip install pnnx ({error})") from None
    folder = Path(folder)
    with tempfile.TemporaryDirectory() as work:
        traced = Path(work) / "model.pt"
        log = Path(work) / "pnnx.log"
        with torch.inference_mode(False), stderr_to(log):  # the converter reports every pass on stderr
            pnnx.export(PaperOrderGenerator(model).eval(), str(traced), (torch.rand(1, 3, 32, 32),))
        param, weights = Path(work) / "model.ncnn.param", Path(work) / "model.ncnn.bin"
        if not (param.is_file() and weights.is_file()):
            raise ExportError(f"pnnx wrote no NCNN files; its log ends: {log.read_text()[-2000:]}")
        target_param, target_bin = folder / f"{stem}.param", folder / f"{stem}.bin"
        target_param.write_text(rename_blobs(param.read_text(), NCNN_BLOBS))
        shutil.copyfile(weights, target_bin)
    return target_param, target_bin


def rename_blobs(param: str, names: dict[str, str]) -> str:
    """An NCNN .param text with blobs renamed. Layer lines are `type name n_in n_out in... out... key=value...`:
    only the blob fields are touched."""
    lines = param.splitlines()
    for number, line in enumerate(lines[2:], start=2):  # magic number, then layer and blob counts
        fields = line.split()
        n_in, n_out = int(fields[2]), int(fields[3])
        blobs = slice(4, 4 + n_in + n_out)
        fields[blobs] = [names.get(blob, blob) for blob in fields[blobs]]
        lines[number] = " ".join(fields)
    return "\n".join(lines) + "\n"


CARD_MARK = "<!-- written by srgan-export -->"


def planned_files(fmt: str, stem: str) -> list[str]:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return [f"{stem}.onnx"] if fmt == "onnx" else [f"{stem}.param", f"{stem}.bin"]


def export(
    model: SRGenerator, fmt: str, output_dir: str | Path, name: str, *, force: bool = False, source: str = ""
) -> list[Path]:
    """Export `model` as `fmt` ("onnx" or "ncnn") into `output_dir`, with a README.md that says what the folder's
    exports are and how to load them (an earlier export's README is updated; another README is kept unless
    `force`). Refuses to overwrite existing model files unless `force`. Returns the files written."""
    output_dir = Path(output_dir)
    stem = export_name(model, name)
    card = output_dir / "README.md"
    existing = [output_dir / f for f in planned_files(fmt, stem) if (output_dir / f).exists()]
    if card.exists() and CARD_MARK not in card.read_text(errors="replace"):
        existing.append(card)
    if existing and not force:
        raise ExportError(f"{', '.join(map(str, existing))} already exist(s); pass --force to overwrite")
    output_dir.mkdir(parents=True, exist_ok=True)
    written = (
        [export_onnx(model, output_dir / f"{stem}.onnx")] if fmt == "onnx" else [*export_ncnn(model, output_dir, stem)]
    )
    formats = [f for f in FORMATS if all((output_dir / name).is_file() for name in planned_files(f, stem))]
    card.write_text(export_card(model, stem, formats, source or name))
    return [*written, card]


def export_card(model: SRGenerator, stem: str, formats: list[str], source: str) -> str:
    """The README of an export folder: what was exported and how to load it."""
    sections = [
        f"{CARD_MARK}\n# {source} for ONNX and NCNN runtimes\n\n"
        f"x{model.scale} SRGAN Hub generator ({model.config_summary()}), exported with `srgan-export {source} "
        f"--format {'|'.join(formats)}`. Input: RGB float in [0, 1], N x 3 x H x W, any height and width. Output: "
        f"RGB in [0, 1], {model.scale}x the height and width. BatchNorm is folded into the convolutions; the "
        'output equals `srgan_hub.upscale(..., dtype="fp32")` on the whole image to within a grey level (ONNX) '
        "or two (NCNN, fp16 weights).\n"
    ]
    if "onnx" in formats:
        sections.append(
            f"## ONNX: `{stem}.onnx`\n\n"
            "Input `input`, output `output`; dynamic batch, height and width. chaiNNer: *Load Model* on the file, "
            "then *Upscale Image*. onnxruntime:\n\n"
            "```python\n"
            "import numpy as np, onnxruntime\n"
            "from PIL import Image\n\n"
            f'session = onnxruntime.InferenceSession("{stem}.onnx")\n'
            'x = np.asarray(Image.open("photo.png").convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255\n'
            'y = session.run(["output"], {"input": x})[0][0].transpose(1, 2, 0)\n'
            f'Image.fromarray((y.clip(0, 1) * 255).round().astype(np.uint8)).save("photo_x{model.scale}.png")\n'
            "```\n"
        )
    if "ncnn" in formats:
        sections.append(
            f"## NCNN: `{stem}.param` + `{stem}.bin`\n\n"
            "Blobs as in Real-ESRGAN's NCNN models: input `data`, output `output`.\n\n"
            "- Upscayl: *Settings*, *Add custom models*, choose this folder; the model is listed as "
            f"`{stem}` (Upscayl reads the scale from the `x{model.scale}` in the name).\n"
            "- chaiNNer: *Load Model* on the `.param` file, then *Upscale Image*.\n"
            f'- Python (`pip install ncnn`): `net = ncnn.Net(); net.load_param("{stem}.param"); '
            f'net.load_model("{stem}.bin")`, then `ex = net.create_extractor(); ex.input("data", ncnn.Mat(chw)); '
            'ex.extract("output")`.\n'
        )
    return "\n".join(sections)
