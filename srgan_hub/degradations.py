"""How LR images are made from HR ones.

`imresize` reproduces MATLAB's `imresize(..., 'bicubic')`, the degradation behind every published x4 benchmark:
a cubic kernel with a = -0.5, stretched by 1/scale when shrinking (anti-aliasing), MATLAB's pixel-centre mapping,
edge-repeating borders and (for integer images) rounding after each axis. Each axis is one matrix product with a
small weight matrix, so the same code degrades a training batch on the fly and a uint8 benchmark image like MATLAB
(>= 99.9% of pixels identical, none off by more than one grey level, on the benchmarks' MATLAB-made LR files).

`gaussian_downsample` is the other classic degradation: Gaussian blur, then keep every `scale`-th pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=256)
def resize_matrix(in_length: int, out_length: int, scale: float, antialias: bool = True) -> torch.Tensor:
    """The out_length x in_length float64 matrix W with resized = W @ signal, exactly as MATLAB computes it."""
    kernel_width = 4.0
    stretch = scale < 1 and antialias
    if stretch:
        kernel_width /= scale
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    centre = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = torch.floor(centre - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    distance = centre[:, None] - indices
    weights = scale * _cubic(distance * scale) if stretch else _cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Taps beyond the border read the edge pixel. (A symmetric mirror, as older MATLAB code is often quoted
    # doing, is off by up to 10 grey levels on the border rows of the reference LR images; edge repetition
    # matches them.)
    source = (indices.long() - 1).clamp(0, in_length - 1)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, source, weights)
    return matrix


def _output_size(size: int, scale: float) -> int:
    return math.ceil(size * scale)


def resize_tensor(images: torch.Tensor, scale: float, antialias: bool = True) -> torch.Tensor:
    """MATLAB-compatible bicubic resize of a float N x C x H x W (or C x H x W) tensor; no clamping or rounding."""
    rows, cols = _matrices(images, scale, antialias)
    # MATLAB resizes the dimension with the smaller factor first; with one factor for both, rows then columns.
    return rows @ images @ cols.T


def _matrices(images: torch.Tensor, scale: float, antialias: bool) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = images.shape[-2:]
    rows = resize_matrix(height, _output_size(height, scale), scale, antialias)
    cols = resize_matrix(width, _output_size(width, scale), scale, antialias)
    return rows.to(images.device, images.dtype), cols.to(images.device, images.dtype)


def _resize_integer_planes(planes: torch.Tensor, scale: float, antialias: bool, low: int, high: int) -> torch.Tensor:
    """MATLAB converts back to the input's integer class after each axis, so the intermediate is rounded too."""
    rows, cols = _matrices(planes, scale, antialias)
    between = (rows @ planes).round_().clamp_(low, high)
    return (between @ cols.T).round_().clamp_(low, high)


def imresize(image, scale: float, antialias: bool = True):
    """Resize like MATLAB's `imresize(image, scale, 'bicubic')`; `scale` < 1 shrinks.

    Accepts a PIL image (L, RGB, RGBA), a uint8/uint16/float H x W [x C] numpy array, or a float tensor
    N x C x H x W / C x H x W; returns the same type. Integer images are computed in float64 and rounded and clipped
    after each axis, as MATLAB does; float inputs are returned unclipped.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise TypeError(f"imresize takes float tensors, got {image.dtype}")
        return resize_tensor(image, scale, antialias)
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB", "RGBA"):
            raise ValueError(f"imresize takes PIL images in L, RGB or RGBA mode, got {image.mode}")
        return Image.fromarray(imresize(np.asarray(image), scale, antialias))  # same mode: uint8 L/RGB/RGBA
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise ValueError(f"imresize takes H x W or H x W x C arrays, got shape {image.shape}")
        planes = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64))
        planes = planes[None] if image.ndim == 2 else planes.permute(2, 0, 1)
        if np.issubdtype(image.dtype, np.integer):
            info = np.iinfo(image.dtype)
            resized = _resize_integer_planes(planes, scale, antialias, info.min, info.max)
        else:
            resized = resize_tensor(planes, scale, antialias)
        resized = resized[0] if image.ndim == 2 else resized.permute(1, 2, 0)
        return resized.numpy().astype(image.dtype)
    raise TypeError(f"imresize takes a PIL image, numpy array or float tensor, got {type(image).__name__}")


def bicubic_downsample(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """HR batch in [0, 1] -> LR batch in [0, 1], MATLAB bicubic. HR sides must be multiples of `scale`."""
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ValueError(f"HR size {tuple(hr.shape[-2:])} is not a multiple of the scale {scale}")
    return resize_tensor(hr, 1 / scale).clamp_(0, 1)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian with radius 3 sigma (at least one tap each side)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_downsample(hr: torch.Tensor, scale: int, sigma: float = 1.5) -> torch.Tensor:
    """Blur an N x C x H x W batch with a Gaussian of std `sigma` (HR pixels, reflected borders), then keep every
    `scale`-th pixel, starting at the centre of each scale x scale cell's top-left (offset (scale - 1) // 2)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    channels = hr.shape[1]
    kernel = gaussian_kernel(sigma).to(hr.device, hr.dtype)
    radius = kernel.numel() // 2
    padded = F.pad(hr, (radius, radius, radius, radius), mode="reflect")
    blurred = F.conv2d(padded, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    blurred = F.conv2d(blurred, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    offset = (scale - 1) // 2
    return blurred[..., offset::scale, offset::scale]


# --------------------------------------------------------------------------------------------------------------
# Real-world degradations: Real-ESRGAN's second-order model (Wang et al., ICCVW 2021, arXiv:2107.10833)
#
# A photo from the web or a phone was blurred by its lens, resized, made noisy by its sensor and JPEG-compressed,
# often more than once. The model does that twice, then resizes to the LR size with a final sinc (ringing) filter
# and JPEG in random order. The defaults are Real-ESRGAN's published settings. Blur, noise and JPEG are drawn per
# image, the resize per batch; everything runs on the batch's device and is seeded by a torch.Generator.

KERNEL_KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass
class DegradationStage:
    """One stage of blur -> resize -> noise -> JPEG (Real-ESRGAN applies two), and the ranges each is drawn from."""

    blur_prob: float = 1.0
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)  # in KERNEL_KINDS' order
    sinc_prob: float = 0.1  # a sinc kernel instead
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    generalized_beta: tuple[float, float] = (0.5, 4.0)
    plateau_beta: tuple[float, float] = (1.0, 2.0)
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # else Poisson noise
    noise_sigma: tuple[float, float] = (1.0, 30.0)  # Gaussian, in grey levels
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_quality: tuple[float, float] = (30.0, 95.0)


def _second_stage() -> DegradationStage:
    return DegradationStage(
        blur_prob=0.8,
        blur_sigma=(0.2, 1.5),
        resize_probs=(0.3, 0.4, 0.3),
        resize_range=(0.3, 1.2),
        noise_sigma=(1.0, 25.0),
        poisson_scale=(0.05, 2.5),
    )


def to_8bit_levels(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images rounded to the 256 levels of an 8-bit file, as every LR image in the benchmarks is."""
    return images.clamp(0, 1).mul(255).round().div(255)


@dataclass
class RealWorldDegradation:
    """HR batch N x 3 x H x W in [0, 1] -> LR batch at 1/scale of its size, degraded twice, in 8-bit levels."""

    scale: int = 4
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    first: DegradationStage = field(default_factory=DegradationStage)
    second: DegradationStage = field(default_factory=_second_stage)
    final_sinc_prob: float = 0.8
    # Not in Real-ESRGAN: this share of the images gets the clean MATLAB-bicubic LR instead, so that the model
    # also learns the benchmark's inputs, on which a purely real-world model over-sharpens.
    clean_prob: float = 0.0

    @torch.no_grad()
    def __call__(self, hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        degraded = self.degrade(hr, generator)
        if self.clean_prob > 0:
            clean = _uniform(generator, len(hr), 0, 1) < self.clean_prob
            degraded[clean] = bicubic_downsample(hr[clean], self.scale).to(degraded.dtype)
        return to_8bit_levels(degraded)

    def degrade(self, hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The second-order degradation of the whole batch, in [0, 1] before the 8-bit rounding."""
        height, width = hr.shape[-2:]
        lr_size = (height // self.scale, width // self.scale)
        # First order: blur, resize (relative to the image), noise, JPEG.
        x = self.blur_resize_noise(hr, self.first, (height, width), generator)
        x = jpeg(x, _uniform(generator, len(x), *self.first.jpeg_quality))
        # Second order: blur, resize (relative to the LR size), noise.
        x = self.blur_resize_noise(x, self.second, lr_size, generator)
        # Last: resize to the LR size, the final sinc filter and JPEG, in one of two orders.
        sinc = None
        if _chance(generator, self.final_sinc_prob):
            sinc = sinc_kernel_batch(_uniform(generator, len(x), math.pi / 3, math.pi), 21)
        quality = _uniform(generator, len(x), *self.second.jpeg_quality)
        if _chance(generator, 0.5):
            x = jpeg(filter_per_image(resize(x, lr_size, generator), sinc), quality)
        else:
            x = filter_per_image(resize(jpeg(x, quality), lr_size, generator), sinc)
        return x

    def blur_resize_noise(self, x, order: DegradationStage, reference: tuple[int, int], generator) -> torch.Tensor:
        if _chance(generator, order.blur_prob):
            x = filter_per_image(x, random_kernels(len(x), self.kernel_sizes, order, generator))
        factor = random_resize_factor(order, generator)
        x = resize(x, (max(1, int(reference[0] * factor)), max(1, int(reference[1] * factor))), generator)
        return add_noise(x.clamp(0, 1), order, generator)


def _uniform(generator: torch.Generator, count: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=generator.device)


def _chance(generator: torch.Generator, probability: float) -> bool:
    return bool(torch.rand(1, generator=generator, device=generator.device) < probability)


def gaussian_family_kernel(
    size: int, sigma_x: float, sigma_y: float, angle: float, beta: float = 1.0, plateau: bool = False
) -> torch.Tensor:
    """A size x size kernel, normalised to sum 1, of d = x^T C^-1 x with C = R(angle) diag(sigma_x^2, sigma_y^2)
    R(angle)^T: exp(-d^beta / 2) (beta 1: the Gaussian; else the generalized Gaussian) or, with `plateau`,
    1 / (1 + d^beta)."""
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    covariance = rotation @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2])) @ rotation.T
    axis = torch.arange(size, dtype=torch.float32) - size // 2
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1)  # [..., (x, y)]
    d = torch.einsum("hwi,ij,hwj->hw", grid, torch.linalg.inv(covariance), grid)
    kernel = 1 / (1 + d**beta) if plateau else torch.exp(-0.5 * d**beta)
    return kernel / kernel.sum()


def sinc_kernel(cutoff: float, size: int) -> torch.Tensor:
    """The ideal circular low-pass filter of angular cutoff `cutoff` (radians per pixel), cut to size x size and
    normalised: cutoff J1(cutoff r) / (2 pi r), cutoff^2 / (4 pi) at r = 0. Its truncation rings, as sharpening and
    resampling filters do in real pipelines."""
    axis = torch.arange(size, dtype=torch.float64) - size // 2
    r = torch.hypot(*torch.meshgrid(axis, axis, indexing="xy"))
    safe = torch.where(r == 0, torch.ones_like(r), r)
    kernel = torch.where(
        r == 0, cutoff**2 / (4 * math.pi), cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    )
    return (kernel / kernel.sum()).float()


def sinc_kernel_batch(cutoffs: torch.Tensor, size: int) -> torch.Tensor:
    return torch.stack([sinc_kernel(float(c), size) for c in cutoffs]).to(cutoffs.device)


def random_kernels(count: int, sizes: tuple[int, ...], order: DegradationStage, generator) -> torch.Tensor:
    """`count` blur kernels drawn as Real-ESRGAN draws them, zero-padded to the largest size."""
    largest = max(sizes)
    kernels = []
    for _ in range(count):
        size = sizes[int(torch.randint(len(sizes), (1,), generator=generator, device=generator.device))]
        if _chance(generator, order.sinc_prob):
            low = math.pi / 3 if size < 13 else math.pi / 5
            kernel = sinc_kernel(float(_uniform(generator, 1, low, math.pi)), size)
        else:
            probs = torch.tensor(order.kernel_probs, device=generator.device)
            kind = KERNEL_KINDS[int(torch.multinomial(probs, 1, generator=generator))]
            sigma_x, sigma_y = (float(v) for v in _uniform(generator, 2, *order.blur_sigma))
            angle = float(_uniform(generator, 1, -math.pi, math.pi))
            if kind.endswith("iso") and not kind.endswith("aniso"):
                sigma_y, angle = sigma_x, 0.0
            beta = 1.0
            if kind.startswith("generalized"):
                beta = float(_uniform(generator, 1, *order.generalized_beta))
            elif kind.startswith("plateau"):
                beta = float(_uniform(generator, 1, *order.plateau_beta))
            kernel = gaussian_family_kernel(size, sigma_x, sigma_y, angle, beta, plateau=kind.startswith("plateau"))
        pad = (largest - size) // 2
        kernels.append(F.pad(kernel, (pad, pad, pad, pad)))
    return torch.stack(kernels)


def filter_per_image(x: torch.Tensor, kernels: torch.Tensor | None) -> torch.Tensor:
    """Each image convolved with its own kernel (edge pixels repeated); None leaves the batch as it is."""
    if kernels is None:
        return x
    from kornia.filters import filter2d

    return filter2d(x, kernels.to(x.device, x.dtype), border_type="replicate")  # any size, even below the kernel


def random_resize_factor(order: DegradationStage, generator) -> float:
    direction = int(
        torch.multinomial(torch.tensor(order.resize_probs, device=generator.device), 1, generator=generator)
    )
    low, high = order.resize_range
    if direction == 0:
        return float(_uniform(generator, 1, 1.0, high))
    if direction == 1:
        return float(_uniform(generator, 1, low, 1.0))
    return 1.0


def resize(x: torch.Tensor, size: tuple[int, int], generator) -> torch.Tensor:
    """Resize to `size` with a randomly drawn interpolation (area, bilinear or bicubic), as cameras and web
    pipelines do."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    mode = RESIZE_MODES[int(torch.randint(len(RESIZE_MODES), (1,), generator=generator, device=generator.device))]
    return F.interpolate(x, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))


def add_noise(x: torch.Tensor, order: DegradationStage, generator) -> torch.Tensor:
    """Per image: Gaussian noise of sigma grey levels, or Poisson (shot) noise of 8-bit counts scaled by a factor;
    in colour, or (gray_noise_prob) the same noise in every channel (for Poisson noise: of the mean channel's
    counts)."""
    count = len(x)
    gaussian = torch.rand(count, generator=generator, device=generator.device) < order.gaussian_noise_prob
    gray = torch.rand(count, generator=generator, device=generator.device) < order.gray_noise_prob
    shape = (count, 3, *x.shape[-2:])
    white = torch.randn(shape, generator=generator, device=generator.device)
    white = torch.where(gray[:, None, None, None], white[:, :1].expand(shape), white)
    sigma = _uniform(generator, count, *order.noise_sigma)[:, None, None, None] / 255
    levels = x.clamp(0, 1).mul(255).round()
    luma = levels.mean(dim=1, keepdim=True).expand(shape)
    counts = torch.where(gray[:, None, None, None], luma, levels)
    uniform = torch.rand(shape, generator=generator, device=generator.device)
    uniform = torch.where(gray[:, None, None, None], uniform[:, :1].expand(shape), uniform)  # gray: one draw
    scale = _uniform(generator, count, *order.poisson_scale)[:, None, None, None]
    noise = white * sigma
    shot = ~gaussian  # the quantiles cost more than all the rest: only where Poisson noise is drawn
    if shot.any():
        noise[shot] = (poisson_quantile(counts[shot], uniform[shot]) - counts[shot]) / 255 * scale[shot]
    return (x + noise).clamp(0, 1)


# Poisson samples are drawn up to this count; the 8-bit counts here are at most 255, and P(X > 511) < 1e-30 there.
POISSON_MAX = 511


def poisson_quantile(rates: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Poisson samples of `rates` from uniform draws in [0, 1), by inverting the CDF: the smallest k with
    P(X <= k) = Q(k + 1, rate) (the regularised upper incomplete gamma) >= u, by bisection. Unlike
    `torch.poisson`, whose rejection sampler draws a rate-dependent count of random numbers (so that one rounding
    difference upstream, from another CPU, thread count or GPU, changes every later draw), the draws are fixed
    before the rates are known: a seeded degradation is the same on every host."""
    low, high = torch.zeros_like(rates), torch.full_like(rates, POISSON_MAX)
    for _ in range(POISSON_MAX.bit_length()):
        middle = ((low + high) / 2).floor()
        enough = torch.special.gammaincc(middle + 1, rates) >= uniform
        low, high = torch.where(enough, low, middle + 1), torch.where(enough, middle, high)
    return low


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG compression at a per-image quality (kornia's differentiable codec: the standard's 8x8 DCT, 4:2:0
    chroma subsampling and quality-scaled tables)."""
    from kornia.enhance import jpeg_codec_differentiable

    return jpeg_codec_differentiable(x.clamp(0, 1), quality.to(x.device, x.dtype)).clamp(0, 1)


DEGRADATIONS = ("bicubic", "gaussian", "realworld")


class TrainingDegradation:
    """How training makes LR from a batch of HR crops, on the batch's device, chosen once from the options:
    "bicubic" (MATLAB's, the paper), "gaussian" (blur with `sigma`, then decimation) or "realworld"
    (`RealWorldDegradation`, with a `clean_prob` share of clean bicubic). LR is quantised to 8 bits, as LR image
    files are. Its random generator is checkpointed (`state_dict`), so that a resumed run degrades as an
    uninterrupted one would."""

    def __init__(self, kind: str, scale: int, device, seed: int, sigma: float = 1.5, clean_prob: float = 0.0):
        if kind not in DEGRADATIONS:
            raise ValueError(f"degradation must be one of {', '.join(DEGRADATIONS)}, got {kind!r}")
        self.kind, self.scale, self.sigma = kind, scale, sigma
        self.realworld = RealWorldDegradation(scale, clean_prob=clean_prob)
        self.generator = torch.Generator(device).manual_seed(seed)

    @torch.no_grad()
    def __call__(self, hr: torch.Tensor) -> torch.Tensor:
        if self.kind == "realworld":
            return self.realworld(hr, self.generator)
        lr = (
            bicubic_downsample(hr, self.scale)
            if self.kind == "bicubic"
            else gaussian_downsample(hr, self.scale, self.sigma)
        )
        return to_8bit_levels(lr)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
