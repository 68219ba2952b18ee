"""SRGAN Hub demo: upload an image, compare bicubic and an x4 SRGAN-family model side by side (a Hugging Face Space).

    python app.py                       # http://127.0.0.1:7860
    SRGAN_MODEL=org/my-srgan python app.py   # add a model (local folder or Hub id)

API: the "upscale" endpoint (see the README for a gradio_client example).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image, ImageOps, UnidentifiedImageError

from srgan_hub import SRGenerator
from srgan_hub.imageio import InvalidImageError
from srgan_hub.inference import DEFAULT_MODELS, bundled_model_dir, load_model, upscale

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_INPUT_PIXELS = int(os.environ.get("SRGAN_MAX_PIXELS", 300 * 300))  # a few seconds per image on 2 CPU cores
UNTRAINED = "Untrained SRResNet x4 (no trained weights bundled: expect noise)"
BUNDLED_LABELS = {"srgan-x4": "SRGAN x4 (bundled)", "srresnet-x4": "SRResNet x4 (bundled, MSE)"}

try:  # ZeroGPU Spaces: the GPU is attached only while a decorated function runs
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(function):
        return function


class ImageUpload(gr.Image):
    """gr.Image whose undecodable uploads end in a clear gr.Error (gr.Image would fail inside its preprocessing
    with a generic processing error). A template component: the browser side is gr.Image's."""

    is_template = True

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise gr.Error(
                "This file is not an image that can be read. Upload a PNG, JPEG, WebP, BMP, TIFF or GIF image."
            ) from error


def available_models() -> dict[str, SRGenerator]:
    """The models offered in the dropdown, the default first: SRGAN_MODEL (if set), the bundled SRGAN-x4 and
    SRResNet-x4, or, when none of those exist, a clearly labelled untrained generator."""
    models = {}
    extra = os.environ.get("SRGAN_MODEL")
    if extra:
        models[f"{Path(extra).name or extra} (SRGAN_MODEL)"] = load_model(extra)
    for name in DEFAULT_MODELS:  # the same folders, in the same order, that upscale() picks its default from
        if (folder := bundled_model_dir(name)) is not None:
            models[BUNDLED_LABELS.get(name, f"{name} (bundled)")] = load_model(str(folder))
    return models or {UNTRAINED: SRGenerator().eval()}


MODELS = available_models()


def fit_to_pixel_limit(image: Image.Image, max_pixels: int) -> Image.Image:
    """Shrink (keeping the aspect ratio) so that width x height <= max_pixels."""
    ratio = (max_pixels / (image.width * image.height)) ** 0.5
    return image.resize((max(1, int(image.width * ratio)), max(1, int(image.height * ratio))), Image.Resampling.LANCZOS)


def open_upright(path: str, refuse_above: int | None) -> Image.Image:
    """Decode the upload with its EXIF orientation applied (so the bicubic side matches upscale()'s output).
    Inputs over `refuse_above` pixels are refused from the header alone, before decoding."""
    unreadable = "This file could not be read as an image: {}"
    try:
        opened = Image.open(path)
    except (UnidentifiedImageError, OSError) as error:
        raise gr.Error(unreadable.format(error)) from error
    with opened:
        pixels = opened.width * opened.height
        if refuse_above is not None and pixels > refuse_above:
            raise gr.Error(
                f"The image is {opened.width}x{opened.height} = {pixels:,} pixels; this demo takes up to "
                f"{refuse_above:,} so that it answers in seconds. Tick 'Downscale large inputs first', or run "
                "`srgan-upscale` locally for any size."
            )
        try:
            return ImageOps.exif_transpose(opened)  # decodes into a copy, so the file can close
        except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
            raise gr.Error(unreadable.format(error)) from error


@gpu
def upscale_image(
    image: str | None,
    model_name: str = next(iter(MODELS)),
    downscale_large: bool = False,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio injects the tracker through this default)
) -> tuple[tuple[str, str], str]:
    """Upscale an image 4x with an SRGAN-family generator and compare it with bicubic interpolation.

    Args:
        image: path or URL of the input image (PNG, JPEG, WebP, ...; transparency is kept).
        model_name: one of the models listed in the dropdown (default: the bundled SRGAN x4, else SRResNet x4).
        downscale_large: shrink inputs above the demo's pixel limit instead of refusing them.

    Returns:
        A pair (bicubic PNG, super-resolved PNG) at the same output size, and the super-resolved PNG again for
        download.
    """
    if image is None:
        raise gr.Error("Upload an image or pick an example first.")
    if model_name not in MODELS:
        raise gr.Error(f"Unknown model {model_name!r}; choose one of: {', '.join(MODELS)}")
    source = open_upright(image, refuse_above=None if downscale_large else MAX_INPUT_PIXELS)
    if source.width * source.height > MAX_INPUT_PIXELS:
        source = fit_to_pixel_limit(source, MAX_INPUT_PIXELS)

    progress(0, desc="Upscaling")
    try:
        sr = upscale(source, MODELS[model_name], progress=lambda done, total: progress((done, total), desc="Tiles"))
    except InvalidImageError as error:  # e.g. too small for the model
        raise gr.Error(f"This image cannot be upscaled: {error}") from error
    bicubic = source.convert(sr.mode).resize(sr.size, Image.Resampling.BICUBIC)
    out_dir = Path(tempfile.mkdtemp(prefix="srgan-"))
    sr.save(out_dir / "srgan_x4.png")
    bicubic.save(out_dir / "bicubic_x4.png")
    return (str(out_dir / "bicubic_x4.png"), str(out_dir / "srgan_x4.png")), str(out_dir / "srgan_x4.png")


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="SRGAN Hub: photo-realistic x4 super-resolution") as demo:
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
                model = gr.Dropdown(list(MODELS), value=next(iter(MODELS)), label="Model")
                downscale = gr.Checkbox(label=f"Downscale large inputs first (limit {MAX_INPUT_PIXELS:,} pixels)")
                button = gr.Button("Upscale x4", variant="primary")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(
                    label="Bicubic | super-resolved", format="png", type="filepath", elem_id="slider"
                )
                download = gr.File(label="Full-size super-resolved result (PNG)")
        examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))
        if examples:
            gr.Examples(examples, inputs=[image], label="Examples (x4 low-resolution benchmark images)")
        button.click(
            upscale_image, [image, model, downscale], [slider, download], api_name="upscale", concurrency_limit=2
        )
    return demo.queue(default_concurrency_limit=2, max_size=64)


demo = build_demo()
LAUNCH_OPTIONS = {"max_file_size": "20mb", "show_error": True}

if __name__ == "__main__":
    # With gradio[mcp] installed, the upscale endpoint is also exposed as an MCP tool.
    demo.launch(**LAUNCH_OPTIONS, mcp_server=importlib.util.find_spec("mcp") is not None)
