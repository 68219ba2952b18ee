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
