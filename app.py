"""SRGAN Hub demo: upload an image, compare bicubic and an x4 SRGAN-family model side by side (a Hugging Face Space).

    python app.py                       # http://127.0.0.1:7860
    SRGAN_MODEL=org/my-srgan python app.py   # add a model (local folder or Hub id)

API: the "upscale" endpoint (see the README for a gradio_client example).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from srgan_hub import SRGenerator
from srgan_hub.imageio import DEFAULT_MAX_PIXELS, ImageTooLargeError, InvalidImageError, save_image
from srgan_hub.inference import DEFAULT_MODELS, bundled_model_dir, load_model, upscale, upscale_with_bicubic

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "srgan-hub-demo"  # this app's own output PNGs, pruned per request
KEPT_OUTPUTS = 8  # request folders kept: 4x the concurrency limit
CACHE_SECONDS = int(os.environ.get("SRGAN_CACHE_SECONDS", 600))
SECONDS_PER_REQUEST = 5.0  # the pixel limit admits inputs that this host upscales in about this long
UNTRAINED = "Untrained SRResNet x4 (no trained weights bundled: expect noise)"
# Uploads are photos (JPEG, noise, blur): the real-world models come first.
APP_MODELS = ("srgan-x4-real", "srresnet-x4-real", *DEFAULT_MODELS)
BUNDLED_LABELS = {
    "srgan-x4-real": "SRGAN x4 real-world (bundled; for photos: JPEG, noise, blur)",
    "srresnet-x4-real": "SRResNet x4 real-world (bundled, MSE; for photos: JPEG, noise, blur)",
    "srgan-x4": "SRGAN x4 (bundled; for clean images)",
    "srresnet-x4": "SRResNet x4 (bundled, MSE)",
}

try:  # ZeroGPU Spaces: the GPU is attached only while a decorated function runs
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(function):
        return function


class ImageUpload(gr.Image):
    """gr.Image that hands the uploaded file itself to the app, undecoded: `read_planes` then reads it as
    `upscale()` does (16-bit, float, alpha, EXIF orientation) and refuses a decompression bomb from its header,
    with the app's own messages. A template component: the browser side is gr.Image's."""

    is_template = True

    def preprocess(self, payload) -> str | None:
        return None if payload is None else payload.path


def available_models() -> dict[str, SRGenerator]:
    """The models offered in the dropdown, the default first: SRGAN_MODEL (if set), the bundled real-world
    models, SRGAN-x4 and SRResNet-x4, or, when none of those exist, a clearly labelled untrained generator."""
    models = {}
    extra = os.environ.get("SRGAN_MODEL")
    if extra:
        models[f"{Path(extra).name or extra} (SRGAN_MODEL)"] = load_model(extra)
    for name in APP_MODELS:
        if (folder := bundled_model_dir(name)) is not None:
            models[BUNDLED_LABELS.get(name, f"{name} (bundled)")] = load_model(str(folder))
    return models or {UNTRAINED: SRGenerator().eval()}


def pixels_per_request(model: SRGenerator, seconds: float = SECONDS_PER_REQUEST) -> int:
    """How many input pixels this host upscales in `seconds`, timed once at start-up (after a warm-up run) on a
    128^2 input: hosts differ several-fold (bf16 units, core count), so a constant would suit only one of them."""
    probe = np.random.default_rng(0).random((128, 128, 3), dtype=np.float32)
    upscale(probe, model)  # warm-up: kernels, the prepared copy of the model
    start = time.perf_counter()
    upscale(probe, model)
    rate = probe.shape[0] * probe.shape[1] / (time.perf_counter() - start)
    return int(min(max(rate * seconds, 64 * 64), 4_000_000))


def largest_example_pixels() -> int:
    """The demo's own examples always run, however slow the host."""
    sizes = [Image.open(path).size for path in EXAMPLES_DIR.glob("*.*") if path.suffix in (".png", ".jpg")]
    return max((width * height for width, height in sizes), default=0)


MODELS = available_models()
MAX_INPUT_PIXELS = int(os.environ.get("SRGAN_MAX_PIXELS", 0)) or max(
    pixels_per_request(next(iter(MODELS.values()))), largest_example_pixels()
)


def too_large_message(error: ImageTooLargeError, downscale_large: bool) -> str:
    pixels = f"The image is {error.width}x{error.height} = {error.width * error.height:,} pixels"
    if downscale_large:
        return f"{pixels}, more than the {DEFAULT_MAX_PIXELS:,} this demo decodes at all; run `srgan-upscale` locally."
    return (
        f"{pixels}; this demo takes up to {MAX_INPUT_PIXELS:,} so that it answers in seconds. Tick 'Downscale large "
        "inputs first', or run `srgan-upscale` locally for any size."
    )


def output_folder() -> Path:
    """A fresh folder for one request's PNGs. Gradio copies returned files into its own cache (which
    `delete_cache` empties) as the request ends, so only the newest folders can still be in use: with two
    requests at a time, the KEPT_OUTPUTS newest are kept and older ones removed."""
    with _OUTPUTS_LOCK:  # two requests pruning at once would stat folders the other just removed
        OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
        folders = sorted(OUTPUT_ROOT.iterdir(), key=_modified_or_zero)
        for old in folders[:-KEPT_OUTPUTS]:
            shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=OUTPUT_ROOT))


_OUTPUTS_LOCK = threading.Lock()


def _modified_or_zero(folder: Path) -> float:
    """A folder's modification time; 0 (oldest) if another app process removed it meanwhile."""
    try:
        return folder.stat().st_mtime
    except FileNotFoundError:
        return 0.0


@gpu
def upscale_image(
    image: str | None,
    model_name: str = next(iter(MODELS)),
    downscale_large: bool = False,
    detail: float = 1.0,
    outscale: int = 4,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio injects the tracker through this default)
) -> tuple[tuple[str, str], str, str]:
    """Upscale an image with an SRGAN-family generator and compare it with bicubic interpolation.

    Args:
        image: path or URL of the input image (PNG, JPEG, WebP, TIFF, ...; transparency and 16-bit depth kept).
        model_name: one of the models listed in the dropdown (default: the bundled real-world model, for photos).
        downscale_large: shrink inputs above the demo's pixel limit instead of refusing them.
        detail: 0 to 1, for a GAN model: 0 is the smooth, faithful model it was fine-tuned from, 1 the GAN's full
            texture (ESRGAN's network interpolation; sharper with every step); ignored by models without a base model.
        outscale: output size, 2, 3 or 4 times the input's (x4, then a Lanczos downscale).

    Returns:
        A pair (bicubic PNG, super-resolved PNG) at the same output size, the super-resolved PNG again for
        download, and a line saying the sizes, model, detail, precision and time taken.
    """
    if image is None:
        raise gr.Error("Upload an image or pick an example first.")
    if model_name not in MODELS:
        raise gr.Error(f"Unknown model {model_name!r}; choose one of: {', '.join(MODELS)}")
    model = MODELS[model_name]
    progress(0, desc="Upscaling")
    try:
        shown = upscale_with_bicubic(
            image,
            model,
            detail=detail if model.base_model and detail != 1 else None,
            outscale=outscale,
            max_pixels=DEFAULT_MAX_PIXELS if downscale_large else MAX_INPUT_PIXELS,
            fit_pixels=MAX_INPUT_PIXELS if downscale_large else None,
            progress=lambda done, total: progress((done, total), desc="Tiles"),
        )
    except ImageTooLargeError as error:
        raise gr.Error(too_large_message(error, downscale_large)) from error
    except (InvalidImageError, OSError) as error:
        message = str(error).replace(image, Path(image).name)  # the server's temp path means nothing to a visitor
        raise gr.Error(f"This file is not an image that can be read: {message}") from error
    except ValueError as error:  # too small for the model, an outscale out of range
        raise gr.Error(f"This image cannot be upscaled: {error}") from error
    out_dir = output_folder()
    sr_path, bicubic_path = out_dir / f"sr_x{outscale}.png", out_dir / f"bicubic_x{outscale}.png"
    save_image(shown.result, sr_path)
    save_image(shown.bicubic, bicubic_path)
    (width, height), (out_width, out_height) = shown.input_size, shown.output_size
    knob = f", detail {detail:g}" if model.base_model else ""
    info = (
        f"{width}x{height} → {out_width}x{out_height} px with {model_name}{knob}, "
        f"{shown.precision} on {shown.device.upper()}, {shown.seconds:.2f} s"
    )
    return (str(bicubic_path), str(sr_path)), str(sr_path), info


def detail_knob(model_name: str) -> dict:
    """The Detail slider's state: live only for a model with a recorded base model (a GAN); for any other it would
    do nothing, so it is greyed out and says why."""
    if MODELS[model_name].base_model is not None:
        return {"interactive": True, "info": "0: smooth and faithful; 1: the GAN's full texture"}
    return {"interactive": False, "info": "GAN models only: this model has no smoother model to blend with"}


def build_demo() -> gr.Blocks:
    # Gradio's cache (uploads, the copies of our outputs it serves) is emptied of files older than CACHE_SECONDS.
    with gr.Blocks(
        title="SRGAN Hub: photo-realistic super-resolution", delete_cache=(CACHE_SECONDS, CACHE_SECONDS)
    ) as demo:
        gr.Markdown(
            "# SRGAN Hub: x4 super-resolution\n"
            "Upload a small image (or pick an example): the slider compares **bicubic** interpolation (left) with "
            "the **model** you choose (right) at the same size. Drag it to see the difference. "
            "[SRGAN paper](https://arxiv.org/abs/1609.04802)"
            + (f"\n\n**Note:** {UNTRAINED}." if UNTRAINED in MODELS else "")
        )
        with gr.Row():
            with gr.Column(scale=1):
                image = ImageUpload(label="Input", type="filepath", image_mode=None, format="png", sources=["upload"])
                model = gr.Dropdown(list(MODELS), value=next(iter(MODELS)), label="Model", elem_id="model")
                detail = gr.Slider(
                    0, 1, value=1, step=0.05, label="Detail", elem_id="detail", **detail_knob(next(iter(MODELS)))
                )
                outscale = gr.Radio([2, 3, 4], value=4, label="Output size (x input)", elem_id="outscale")
                downscale = gr.Checkbox(label=f"Downscale large inputs first (limit {MAX_INPUT_PIXELS:,} pixels)")
                button = gr.Button("Upscale", variant="primary")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(
                    label="Bicubic | super-resolved", format="png", type="filepath", elem_id="slider"
                )
                download = gr.File(label="Full-size super-resolved result (PNG)")
                info = gr.Markdown(elem_id="info")
        # Examples are upscaled once, at launch, with the default settings (Gradio keeps the results in
        # .gradio/cached_examples): a click shows the result at once, and the first photo's on page load.
        groups = [
            ("Photos (real JPEGs, quality 80)", sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))),
            ("Benchmark (x4 MATLAB-bicubic LR images)", sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))),
        ]
        for group, (label, paths) in enumerate([(label, paths) for label, paths in groups if paths]):
            gr.Examples(
                paths,
                inputs=[image],
                outputs=[slider, download, info],
                fn=upscale_image,
                cache_examples=True,
                cache_mode="eager",
                label=label,
                preload=0 if group == 0 else False,
            )
        model.change(lambda name: gr.Slider(**detail_knob(name)), model, detail, api_visibility="private")
        button.click(
            upscale_image,
            [image, model, downscale, detail, outscale],
            [slider, download, info],
            api_name="upscale",
            concurrency_limit=2,
        )
    return demo.queue(default_concurrency_limit=2, max_size=64)


demo = build_demo()
LAUNCH_OPTIONS = {"max_file_size": "20mb", "show_error": True}

if __name__ == "__main__":
    # With gradio[mcp] installed, the upscale endpoint is also exposed as an MCP tool.
    demo.launch(**LAUNCH_OPTIONS, mcp_server=importlib.util.find_spec("mcp") is not None)
