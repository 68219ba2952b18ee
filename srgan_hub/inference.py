"""`upscale()`: super-resolve any image, of any size, in bounded memory, with output equal to a single pass.

Tiling: the LR image is cut into tiles; each is run with `overlap` extra LR pixels of real context on every side,
and only its centre is kept. When `overlap` >= the generator's receptive margin, nothing outside the context
can reach the kept pixels, so the assembled output equals whole-image inference (up to float rounding) and
there are no seams. Tiles are written into one preallocated uint8/uint16 array.

Speed: eval-mode BatchNorm is an affine map, folded into the preceding convolution once per model; PReLUs become
in-place LeakyReLUs of the same slope; inputs and weights are channels_last (oneDNN's fast layout); everything
runs under `torch.inference_mode`.
"""

from __future__ import annotations

import copy
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from srgan_hub.imageio import DEFAULT_MAX_PIXELS, Planes, read_planes
from srgan_hub.models import SRGenerator

DEFAULT_MODELS = ("srgan-x4", "srresnet-x4")  # bundled folders, in order of preference
# Installed from a wheel, the bundled models sit in the package (srgan_hub/bundled); in a checkout, in models/.
_PACKAGE = Path(__file__).resolve().parent
BUNDLED_MODELS_DIR = next(
    (d for d in (_PACKAGE / "bundled", _PACKAGE.parent / "models") if d.is_dir()), _PACKAGE / "bundled"
)
# Working memory of one upscale(): the input planes, the output image and one window's activations. With the
# process itself (~0.4 GB), a 2048^2 input stays within 1 GB of RSS (about 870 MB in bf16, of which the float32
# first block's buffers take about 100 MB; benchmarks/bench_inference.py), and a 512^2 one runs in two bf16 windows.
WORKING_MEMORY_BYTES = 512 * 2**20
MIN_WINDOW_BYTES = 64 * 2**20  # for images whose output alone fills the budget: more tiles, not none
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_ENV = "SRGAN_HUB_PRECISION"  # auto (default), fp32, bf16 or fp16: e.g. fp32 to rule out low precision


class NoBundledModelError(FileNotFoundError):
    """No model was given and none is bundled with this installation."""


# --------------------------------------------------------------------------------------------------------------
# Models


def bundled_models_root() -> Path:
    """Where the bundled models are: $SRGAN_HUB_MODELS, else the package's (or the checkout's) own folder."""
    return Path(os.environ.get("SRGAN_HUB_MODELS", BUNDLED_MODELS_DIR))


def bundled_model_dir(name: str) -> Path | None:
    """Folder of a model shipped with the project (`models/<name>`), if this installation has it."""
    folder = bundled_models_root() / name
    return folder if (folder / "model.safetensors").is_file() else None


@lru_cache(maxsize=8)
def load_model(model: str | None = None) -> SRGenerator:
    """An SRGenerator from a local folder, a bundled model's name ("srresnet-x4-real") or a Hub id; None means
    the bundled default model."""
    if model is not None and "/" not in model and not Path(model).exists():
        model = str(bundled_model_dir(model) or model)
    if model is None:
        folder = next((f for f in map(bundled_model_dir, DEFAULT_MODELS) if f is not None), None)
        if folder is None:
            raise NoBundledModelError(
                f"no trained model is bundled in {BUNDLED_MODELS_DIR} (looked for {', '.join(DEFAULT_MODELS)}): "
                "pass a model folder or Hub id (model=..., --model ...), set SRGAN_HUB_MODELS to a folder that "
                "holds them, or install srgan-hub from a wheel or checkout that includes models/"
            )
        model = str(folder)
    return SRGenerator.from_pretrained(model)


class NoBaseModelError(ValueError):
    """`detail` was asked of a generator that records no PSNR-oriented base model."""


def load_base_model(model: SRGenerator) -> SRGenerator:
    """The PSNR-oriented generator `model` was fine-tuned from (its config's `base_model`): a folder, a bundled
    model of the same name (so that a bundled GAN finds its bundled base offline), or a Hub id."""
    if not model.base_model:
        raise NoBaseModelError(
            "this generator records no base_model (the PSNR-oriented generator it was fine-tuned from), so it "
            'has no detail knob; use detail=None, or add "base_model" to its config.json'
        )
    bundled = bundled_model_dir(model.base_model.rstrip("/").split("/")[-1])
    folder = model.base_model if Path(model.base_model).is_dir() else bundled
    base = load_model(str(folder) if folder is not None else model.base_model)
    if base.architecture() != model.architecture():
        raise NoBaseModelError(f"base_model {model.base_model} has another architecture: {base.config_summary()}")
    return base


_BLENDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def blend_with_base(model: SRGenerator, detail: float) -> SRGenerator:
    """ESRGAN's network interpolation, weight by weight from the base model (detail 0, the PSNR-oriented model) to
    the GAN (detail 1), in a form whose sharpness grows steadily with `detail`:

    - each convolution is blended with its BatchNorm folded in, as the function it computes;
    - each conv filter's direction and length are blended separately, both at (1 - detail) : detail.

    A plain blend of two filters that point different ways is shorter than both, and the GAN fine-tuning turned its
    filters far (its output conv by 59%): plainly blended, the half-way models came out smoother than either end
    (docs/experiments.md). Cached per model and detail."""
    if not 0 <= detail <= 1:
        raise ValueError(f"detail must be in [0, 1], got {detail}")
    if detail == 1:
        return model
    cache = _BLENDS.setdefault(model, {})
    if detail not in cache:
        base = fold_batchnorm(copy.deepcopy(load_base_model(model)).eval()).state_dict()
        mixed = fold_batchnorm(copy.deepcopy(model).eval())
        mixed.load_state_dict(
            {name: blend_weights(base[name], gan, detail) for name, gan in mixed.state_dict().items()}
        )
        cache[detail] = mixed
    return cache[detail]


def blend_weights(base: torch.Tensor, gan: torch.Tensor, detail: float) -> torch.Tensor:
    """(1 - detail) x base + detail x gan; for conv weights, each output filter rescaled to the blend of the two
    filters' lengths."""
    if not gan.is_floating_point():
        return gan
    blended = torch.lerp(base, gan, detail)
    if blended.dim() == 4:
        length = torch.lerp(base.flatten(1).norm(dim=1), gan.flatten(1).norm(dim=1), detail)
        blended *= (length / blended.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, 1, 1, 1)
    return blended


def inplace_activations(module: nn.Module) -> nn.Module:
    """Swap each single-slope PReLU for the equal in-place LeakyReLU (10x faster on CPU; inference only)."""
    for name, child in module.named_children():
        if isinstance(child, nn.PReLU) and child.num_parameters == 1:
            setattr(module, name, nn.LeakyReLU(child.weight.item(), inplace=True))
        else:
            inplace_activations(child)
    return module


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the convolution right before it (in place), leaving an Identity."""
    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        layers = list(module)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                module[i + 1] = nn.Identity()
    return module


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class CastTo(nn.Module):
    """Casts its input to `dtype`: the seam between float32 layers and half-precision ones."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)


def prepare_for_inference(model: SRGenerator, device: torch.device, dtype: torch.dtype) -> SRGenerator:
    """An eval-mode copy with BatchNorm folded, channels_last, on `device` in `dtype` (cached per model).

    In half precision the input layer and the first residual block stay in float32. bf16 keeps 8 significant
    bits, so rounding the input moves it by up to half a grey level, and the first block amplifies what it is
    given. Half-precision throughout differs from float32 by up to 5 grey levels, while these two layers in
    float32 keep every pixel within 3, at 4% of the FLOPs (docs/experiments.md)."""
    cache = _PREPARED.setdefault(model, {})
    key = (str(device), dtype)
    if key not in cache:
        net = inplace_activations(fold_batchnorm(copy.deepcopy(model).eval()))
        net = net.to(device=device, dtype=dtype, memory_format=torch.channels_last).requires_grad_(False)
        if dtype != torch.float32:
            net.head.float()  # the long skip adds the head's float32 output into the half-precision body's
            net.body[0] = nn.Sequential(net.body[0].float(), CastTo(dtype))
        cache[key] = net
    return cache[key]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX512-BF16). Elsewhere bf16 is emulated, 2-3x slower
    than fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def default_device_and_dtype(device=None, dtype=None) -> tuple[torch.device, torch.dtype]:
    """The device (CUDA when available) and the fastest precision that keeps the output: fp16 on CUDA, bf16 on a
    CPU with bf16 units, else fp32. `dtype` (a torch dtype or "auto"/"fp32"/"bf16"/"fp16") or the
    SRGAN_HUB_PRECISION environment variable override the choice."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    choice = dtype if dtype is not None else os.environ.get(PRECISION_ENV, "auto")
    if isinstance(choice, torch.dtype):
        return device, choice
    if choice != "auto" and choice not in PRECISIONS:
        raise ValueError(f"precision must be 'auto' or one of {', '.join(PRECISIONS)}, got {choice!r}")
    if choice == "auto":
        choice = "fp16" if device.type == "cuda" else "bf16" if cpu_has_bf16() else "fp32"
    return device, PRECISIONS[choice]


def precision_name(dtype: torch.dtype) -> str:
    """ "fp32", "bf16" or "fp16"."""
    return next(name for name, known in PRECISIONS.items() if known == dtype)


# --------------------------------------------------------------------------------------------------------------
# Tiling


def tile_grid(height: int, width: int, tile: int | tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """(top, left, tile_height, tile_width) of equal tiles of at most `tile` pixels (a side, or (height, width))
    covering the image; a side <= 0 means one tile. Equal tiles, not `tile`-sized ones plus a sliver: each costs a
    full window of compute."""
    most_h, most_w = (tile, tile) if isinstance(tile, int) else tile
    rows = _even_split(height, most_h if most_h > 0 else height)
    columns = _even_split(width, most_w if most_w > 0 else width)
    return [(top, left, tile_h, tile_w) for top, tile_h in rows for left, tile_w in columns]


def _even_split(length: int, most: int) -> list[tuple[int, int]]:
    count = -(-length // most)
    size = -(-length // count)
    return [(start, min(size, length - start)) for start in range(0, length, size)]


def tile_for_memory(height: int, width: int, overlap: int, max_window_pixels: int) -> tuple[int, int]:
    """The (tile height, tile width) whose grid needs the least compute, i.e. the smallest total window area,
    while every window (a tile plus `overlap` LR pixels of context on each side) has at most `max_window_pixels`.
    Tiles may be oblong: a 512^2 input in two 512 x 256 tiles recomputes less than in four 256^2 ones."""
    best, best_cost = (1, 1), None
    for rows in range(1, height + 1):
        tile_h = -(-height // rows)
        window_h = min(tile_h + 2 * overlap, height)
        widest = max_window_pixels // window_h
        tile_w = width if widest >= width else widest - 2 * overlap
        if tile_w < 1:
            continue
        grid = tile_grid(height, width, (tile_h, tile_w))
        cost = len(grid) * window_h * min(grid[0][3] + 2 * overlap, width)
        if best_cost is None or cost < best_cost:
            best, best_cost = (tile_h, tile_w), cost
        if widest >= width:
            break  # one column already: more rows only add overlap
    return best


def window_pixels_for_memory(net: SRGenerator, dtype: torch.dtype, memory_bytes: int) -> int:
    """How many LR pixels one window may hold. The forward's peak is the last x2 stage: its input (C channels) and
    its conv's output (4C) at half the output resolution, 5C (scale / 2)^2 values per LR pixel."""
    values = 5 * net.num_channels * (net.scale // 2) ** 2
    return memory_bytes // (values * torch.finfo(dtype).bits // 8)


def run_tiled(
    net: SRGenerator,
    lr: torch.Tensor,
    tiles: list[tuple[int, int, int, int]],
    overlap: int,
    emit: Callable[[int, int, torch.Tensor], None],
    progress: Callable[[int, int], None] | None = None,
    fallback: SRGenerator | None = None,
) -> None:
    """Run `net` on 1 x 3 x H x W `lr` tile by tile (`tile_grid`'s tiles); `emit(top, left, sr)` receives each
    tile's float32 HR output (1 x 3 x h x w) at HR coordinates. A tile whose output is not finite is recomputed
    with `fallback` (fp32)."""
    scale = net.scale
    _, _, height, width = lr.shape
    # Every patch has the same shape: `overlap` real LR pixels of context on each side, and at the image border
    # the window slides inwards instead of shrinking (the border's own padding is real there). One shape means
    # one set of oneDNN kernels and buffers of one size for the allocator to reuse.
    window_h, window_w = min(tiles[0][2] + 2 * overlap, height), min(tiles[0][3] + 2 * overlap, width)
    for done, (top, left, tile_h, tile_w) in enumerate(tiles, start=1):
        y0 = min(max(top - overlap, 0), height - window_h)
        x0 = min(max(left - overlap, 0), width - window_w)
        patch = lr[:, :, y0 : y0 + window_h, x0 : x0 + window_w]
        sr = _forward(net, patch, fallback)
        keep_y, keep_x = (top - y0) * scale, (left - x0) * scale
        emit(top * scale, left * scale, sr[:, :, keep_y : keep_y + tile_h * scale, keep_x : keep_x + tile_w * scale])
        if progress is not None:
            progress(done, len(tiles))


def _forward(net: SRGenerator, patch: torch.Tensor, fallback: SRGenerator | None) -> torch.Tensor:
    param = next(net.parameters())  # the input layer's: float32 in a half-precision network too
    x = patch.to(device=param.device, dtype=param.dtype).contiguous(memory_format=torch.channels_last)
    sr = net(x).float()
    if fallback is not None and not torch.isfinite(sr).all():
        # Half precision overflowed (a known failure of fp16 SR inference: black or speckled tiles); redo in fp32.
        sr = fallback(patch.to(device=param.device, dtype=torch.float32).contiguous(memory_format=torch.channels_last))
    return sr.float()


# --------------------------------------------------------------------------------------------------------------
# The public function


@torch.inference_mode()
def upscale(
    image,
    model: SRGenerator | str | Path | None = None,
    *,
    tile: int | None = None,
    tile_overlap: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    detail: float | None = None,
    outscale: float | None = None,
):
    """Super-resolve `image` with an SRGAN generator.

    Args:
        image: a path, bytes, PIL image or numpy array (uint8, uint16 or float in [0, 1]). RGB, RGBA, L, LA, P,
            CMYK, 1-bit and 16-bit images are accepted; EXIF orientation is applied.
        model: an `SRGenerator`, a local folder or Hub id, or None for the bundled default model.
        tile: largest LR tile side in pixels (the image is split into equal tiles); None picks the tiling that
            recomputes least within `WORKING_MEMORY_BYTES` (one pass when the image fits), 0 forces
            a single pass.
        tile_overlap: LR context pixels around each tile; default is the model's receptive margin, which makes
            tiled output equal to a single pass. Smaller is faster but may show seams.
        device, dtype: default CUDA in float16 when available, else CPU in bfloat16 where the CPU has bf16 units
            (AMX, AVX512-BF16) and float32 elsewhere (`default_device_and_dtype`); dtype may also be "auto",
            "fp32", "bf16" or "fp16". Non-finite half-precision tiles are recomputed in float32.
        max_pixels: refuse larger inputs (decompression bombs); None disables the check.
        progress: called as progress(tiles_done, tiles_total).
        detail: perception against fidelity, in [0, 1]: the GAN generator's weights blended with those of the
            PSNR-oriented model it was fine-tuned from (config `base_model`); 0 gives that model, 1 (or None) the
            GAN as it is.
        outscale: the output's scale, from 1 to the model's: the model's output is resized (Lanczos) to
            round(width x outscale) x round(height x outscale), halves rounded up.

    Returns:
        A PIL image of the same kind (mode, alpha, ICC profile) at `scale` times the size; for 16-bit colour or
        16-bit gray+alpha input (which PIL cannot hold), an H x W x C uint16 array (save it with
        `srgan_hub.imageio.save_image`).

    Raises:
        srgan_hub.imageio.InvalidImageError: not an image, truncated, empty or too small.
        srgan_hub.imageio.ImageTooLargeError: over `max_pixels`.
        NoBundledModelError: model=None and no model is bundled.
        NoBaseModelError: `detail` for a model without a recorded base model.
    """
    planes = read_planes(image, max_pixels)
    generator = model if isinstance(model, SRGenerator) else load_model(None if model is None else str(model))
    if outscale is not None and not 1 <= outscale <= generator.scale:
        raise ValueError(f"outscale must be between 1 and the model's scale {generator.scale}, got {outscale}")
    if detail is not None:
        generator = blend_with_base(generator, detail)
    device, dtype = default_device_and_dtype(device, dtype)
    net = prepare_for_inference(generator, device, dtype)
    fallback = prepare_for_inference(generator, device, torch.float32) if dtype != torch.float32 else None
    result = upscale_planes(net, planes, tile=tile, tile_overlap=tile_overlap, progress=progress, fallback=fallback)
    if outscale is None or outscale == generator.scale:
        return result
    return resize_result(result, output_size(planes.size, outscale))


def output_size(size: tuple[int, int], outscale: float) -> tuple[int, int]:
    """(width, height) of an output at `outscale` times `size`: round(side x outscale), halves rounded up."""
    width, height = size
    return int(width * outscale + 0.5), int(height * outscale + 0.5)


@dataclass
class Comparison:
    """What a person who asked for an upscale is shown: the result, bicubic interpolation at the same size (the same
    kind of image), and the facts about the run."""

    result: Image.Image | np.ndarray
    bicubic: Image.Image | np.ndarray
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]
    precision: str  # "fp32", "bf16" or "fp16"
    device: str  # "cpu", "cuda"
    seconds: float  # the upscale itself


def upscale_with_bicubic(
    image,
    model: SRGenerator,
    *,
    detail: float | None = None,
    outscale: float | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    fit_pixels: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """`upscale(image, model, ...)` in the automatic precision, with its bicubic counterpart for a side-by-side
    view (the demo's slider). `image` is anything `upscale` reads, decoded once: refused over `max_pixels`,
    scaled down to fit `fit_pixels` (see `read_planes`)."""
    planes = read_planes(image, max_pixels, fit_pixels)
    device, dtype = default_device_and_dtype()
    start = time.perf_counter()
    result = upscale(
        planes, model, detail=detail, outscale=outscale, progress=progress, max_pixels=None, device=device, dtype=dtype
    )
    seconds = time.perf_counter() - start
    scale = outscale or model.scale
    size = output_size(planes.size, scale)
    return Comparison(
        result, bicubic_comparison(planes, size), planes.size, size, precision_name(dtype), device.type, seconds
    )


def bicubic_comparison(planes: Planes, size: tuple[int, int]):
    """Bicubic interpolation of `planes` to `size` (width, height), as the same kind of image as `upscale` returns
    (bit depth, grayscale, alpha, ICC profile): what a comparison with the model's output shows beside it."""
    resize = lambda plane: F.interpolate(plane, size=size[::-1], mode="bicubic").clamp(0, 1)[0]  # noqa: E731
    colour = resize(torch.from_numpy(planes.colour).permute(2, 0, 1)[None]).permute(1, 2, 0).numpy()
    colour = colour[..., :1] if planes.grayscale else colour
    alpha = None if planes.alpha is None else resize(torch.from_numpy(planes.alpha)[None, None])[0].numpy()
    return assemble(planes.quantise(colour), alpha, planes)


def resize_result(result, size: tuple[int, int]):
    """`upscale`'s output (a PIL image, or a uint16 array) resized to `size` = (width, height) with Lanczos."""
    if isinstance(result, Image.Image) and result.mode != "I;16":
        resized = result.resize(size, Image.Resampling.LANCZOS)
        resized.info = dict(result.info)  # the ICC profile
        return resized
    array = np.asarray(result)
    planes = array[..., None] if array.ndim == 2 else array
    channels = [
        np.asarray(Image.fromarray(planes[..., c].astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS))
        for c in range(planes.shape[2])
    ]
    out = np.clip(np.round(np.stack(channels, axis=2)), 0, 65535).astype(np.uint16)
    return Image.fromarray(out[..., 0]) if isinstance(result, Image.Image) else out


def upscale_planes(
    net: SRGenerator,
    planes: Planes,
    *,
    tile: int | None = None,
    tile_overlap: int | None = None,
    progress=None,
    fallback=None,
):
    """Upscale already-read planes with a prepared network (see `upscale`)."""
    scale = net.scale
    height, width = planes.colour.shape[:2]
    overlap = net.receptive_margin if tile_overlap is None else tile_overlap
    channels = 1 if planes.grayscale else 3
    output_bytes = height * width * scale**2 * (channels + (planes.alpha is not None)) * planes.bits // 8
    if tile is None:
        window_bytes = max(WORKING_MEMORY_BYTES - output_bytes - planes.colour.nbytes, MIN_WINDOW_BYTES)
        tile = tile_for_memory(
            height, width, overlap, window_pixels_for_memory(net, net.tail.weight.dtype, window_bytes)
        )
    colour = planes.colour if planes.alpha is None else fill_transparent(planes.colour, planes.alpha)
    lr = torch.from_numpy(colour).permute(2, 0, 1)[None]

    output = np.empty((height * scale, width * scale, channels), dtype=np.uint16 if planes.bits == 16 else np.uint8)

    def emit(top: int, left: int, sr: torch.Tensor) -> None:
        pixels = sr[0].clamp_(0, 1)
        if planes.grayscale:
            pixels = pixels.mean(dim=0, keepdim=True)
        quantised = pixels.mul_(planes.peak).round_().permute(1, 2, 0).cpu().numpy()
        output[top : top + quantised.shape[0], left : left + quantised.shape[1]] = quantised

    run_tiled(net, lr, tile_grid(height, width, tile), overlap, emit, progress, fallback)
    alpha = None if planes.alpha is None else upscale_alpha(planes.alpha, scale)
    return assemble(output, alpha, planes)


def assemble(output: np.ndarray, alpha: np.ndarray | None, planes: Planes):
    """Quantised colour (+ float alpha) -> the output image of the input's kind."""
    if alpha is not None:
        output = np.concatenate([output, planes.quantise(alpha)[..., None]], axis=2)
    if planes.bits == 16 and (not planes.grayscale or alpha is not None):
        return output  # PIL cannot hold 16-bit colour or 16-bit gray+alpha
    if planes.bits == 16:
        image = Image.fromarray(output[..., 0])  # uint16 -> "I;16"
    else:
        image = Image.fromarray(output[..., 0] if output.shape[2] == 1 else output)
    if planes.icc_profile:
        image.info["icc_profile"] = planes.icc_profile
    return image


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """Alpha is a mask, not a texture: bicubic interpolation (no invented detail), clipped to [0, 1]."""
    plane = Image.fromarray(alpha.astype(np.float32))  # mode "F"
    resized = plane.resize((plane.width * scale, plane.height * scale), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(resized), 0, 1)


def fill_transparent(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Give fully transparent pixels the colour of their visible neighbourhood.

    Transparent pixels usually store black (or garbage). The network mixes neighbours, so that colour would bleed
    into visible edges as a dark halo. Alpha-weighted averages over growing windows fill each hidden pixel with
    nearby visible colour instead; visible pixels are unchanged."""
    hidden = alpha <= 1 / 255
    if not hidden.any() or hidden.all():
        return colour
    weights = torch.from_numpy(alpha)[None, None]
    weighted = torch.from_numpy(colour).permute(2, 0, 1)[None] * weights
    filled = torch.from_numpy(colour).permute(2, 0, 1)[None].clone()
    todo = torch.from_numpy(hidden)[None, None]
    for radius in (2, 8, 32, 128, 512, max(colour.shape[:2])):
        num = F.avg_pool2d(weighted, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
        den = F.avg_pool2d(weights, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
        ready = todo & (den > 1e-6)
        filled = torch.where(ready, num / den.clamp_min(1e-6), filled)
        todo = todo & ~ready
        if not todo.any():
            break
    return filled[0].permute(1, 2, 0).numpy()
