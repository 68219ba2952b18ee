"""PSNR and SSIM as the super-resolution literature computes them.

Protocol (SRGAN paper, and most SR papers since): both images uint8; convert to the Y channel of BT.601 YCbCr
with MATLAB's `rgb2ycbcr` constants (Y in [16, 235]); remove a border of `scale` pixels; compute in float64.
SSIM is Wang et al. (2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

# MATLAB rgb2ycbcr: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 255]
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def to_array(image) -> np.ndarray:
    """A uint8 PIL image or array -> H x W [x C] uint8 array (RGBA/LA drop alpha; P is converted to RGB)."""
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            image = image.convert("L" if image.mode in ("LA", "I;16", "I") else "RGB")
        image = np.asarray(image)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"metrics take uint8 images (the literature's protocol), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] in (2, 4):
        image = image[..., :-1]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return image


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr (MATLAB `rgb2ycbcr`) in [16, 235], float64. A grayscale image is its own luma: it is
    mapped to the same range, exactly as an R = G = B image would be."""
    image = image.astype(np.float64)
    if image.ndim == 2:
        return image * _Y_WEIGHTS.sum() + 16.0
    return image @ _Y_WEIGHTS + 16.0


def _prepare(sr, hr, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    sr, hr = to_array(sr), to_array(hr)
    if sr.shape[:2] != hr.shape[:2]:
        raise ValueError(f"images differ in size: {sr.shape[1::-1]} vs {hr.shape[1::-1]} (width x height)")
    if y_channel:
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    elif sr.ndim != hr.ndim:  # grayscale against colour: compare in RGB
        sr, hr = (np.stack([a] * 3, axis=-1) if a.ndim == 2 else a for a in (sr, hr))
    sr, hr = sr.astype(np.float64), hr.astype(np.float64)
    if crop_border:
        if min(sr.shape[:2]) <= 2 * crop_border:
            raise ValueError(f"image {sr.shape[1::-1]} is too small for a border crop of {crop_border}")
        sr = sr[crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[crop_border:-crop_border, crop_border:-crop_border]
    return sr, hr


def psnr(sr, hr, crop_border: int = 4, y_channel: bool = True) -> float:
    """Peak signal-to-noise ratio in dB (peak 255); `inf` for identical images."""
    sr, hr = _prepare(sr, hr, crop_border, y_channel)
    mse = np.mean((sr - hr) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = _gaussian_window()
    x = torch.from_numpy(np.stack([a, b, a * a, b * b, a * b]))[:, None]
    mu_a, mu_b, aa, bb, ab = F.conv2d(x, window)[:, 0]  # 'valid': no padding
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim(sr, hr, crop_border: int = 4, y_channel: bool = True) -> float:
    """Structural similarity (Wang et al. 2004); on RGB (y_channel=False) the mean over the channels."""
    sr, hr = _prepare(sr, hr, crop_border, y_channel)
    if min(sr.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the border crop, got {sr.shape[1::-1]}")
    if sr.ndim == 2:
        return _ssim_plane(sr, hr)
    return float(np.mean([_ssim_plane(sr[..., c], hr[..., c]) for c in range(sr.shape[2])]))


# --- Artefacts that PSNR averages away --------------------------------------------------------------------------


def _rgb(image) -> np.ndarray:
    return np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)


def colour_shift(sr, hr) -> np.ndarray:
    """Per-channel (R, G, B) mean of SR - HR in grey levels: a colour cast, which shows on flat areas."""
    return (_rgb(sr) - _rgb(hr)).reshape(-1, 3).mean(axis=0)


def subpixel_phase_pattern(sr, hr, scale: int) -> np.ndarray:
    """`scale` x `scale` array: the mean of SR - HR (grey levels, mean of R, G, B) at each sub-pixel phase, less
    their mean. Image content averages out over the phases; a PixelShuffle checkerboard, a pattern that repeats
    every `scale` pixels, does not."""
    residual = (_rgb(sr) - _rgb(hr)).mean(axis=2)
    height, width = residual.shape[0] // scale * scale, residual.shape[1] // scale * scale
    phases = residual[:height, :width].reshape(height // scale, scale, width // scale, scale).mean(axis=(0, 2))
    return phases - phases.mean()


def sharpness_ratio(sr, hr) -> float:
    """Energy of SR's luma gradients over HR's. Below 1 the SR is smoother than the truth (the regression to the
    mean of MSE training); the adversarial loss of SRGAN exists to raise it."""

    def gradient_energy(image) -> float:
        y = rgb_to_y(_rgb(image))
        return float(np.mean(np.diff(y, axis=0) ** 2) + np.mean(np.diff(y, axis=1) ** 2))

    return gradient_energy(sr) / gradient_energy(hr)


def blockiness(image, scale: int, block: int = 8) -> float:
    """JPEG block structure carried into an upscaled image: the mean absolute luma step across the input's
    `block`-pixel block boundaries, mapped onto the output grid (between output pixels block x scale x k - 1 and
    block x scale x k), over the same across the input's other pixel boundaries (the same sub-pixel phase, so that
    an interpolator's phase-dependent steps cancel), rows and columns together. 1: no grid; compare with bicubic's
    on the same input, which keeps the input's own block edges without adding any."""
    y = rgb_to_y(_rgb(image))
    steps = [np.abs(np.diff(y, axis=axis)) for axis in (0, 1)]  # step k lies between pixels k and k + 1

    def mean_step(on_block_edge: bool) -> float:
        values = []
        for axis, step in enumerate(steps):
            position = np.arange(1, step.shape[axis] + 1)
            chosen = (position % scale == 0) & ((position % (block * scale) == 0) == on_block_edge)
            values.append(step[chosen].ravel() if axis == 0 else step[:, chosen].ravel())
        return float(np.concatenate(values).mean())

    return mean_step(True) / mean_step(False)


def image_artefacts(sr, hr, scale: int) -> tuple[np.ndarray, np.ndarray, float]:
    """One image's colour shift, sub-pixel phase pattern and sharpness ratio, to be summarised over a set by
    `summarise_artefacts`."""
    return colour_shift(sr, hr), subpixel_phase_pattern(sr, hr, scale), sharpness_ratio(sr, hr)


def summarise_artefacts(per_image: list[tuple[np.ndarray, np.ndarray, float]]) -> dict[str, float]:
    """The worst channel's mean colour shift, the largest sub-pixel phase offset (both in grey levels, averaged
    over the images first, so that what is fixed adds up and content cancels), and the mean sharpness ratio."""
    shifts, patterns, sharpness = zip(*per_image, strict=True)
    return {
        "colour_shift": float(np.abs(np.mean(shifts, axis=0)).max()),
        "phase_pattern": float(np.abs(np.mean(patterns, axis=0)).max()),
        "sharpness": float(np.mean(sharpness)),
    }


def artefact_metrics(srs: list, hrs: list, scale: int) -> dict[str, float]:
    """`summarise_artefacts` over a set of (SR, HR) images."""
    return summarise_artefacts([image_artefacts(sr, hr, scale) for sr, hr in zip(srs, hrs, strict=True)])


# --- LPIPS: the perceptual metric SR papers report ----------------------------------------------------------

# LPIPS's ScalingLayer: images in [-1, 1] are standardised by these before AlexNet.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_FILES = ("alexnet_features.safetensors", "lpips_v0.1_alex_lin.safetensors")


class LPIPS(nn.Module):
    """LPIPS v0.1 on AlexNet ("LPIPS-alex"; Zhang et al., CVPR 2018), the `lpips` package's default network.

    At the five ReLU outputs of AlexNet's conv stages, each pixel's feature vector is unit-normalised for both
    images; the squared differences are weighted per channel by the learned linear layer `lin{i}` and averaged
    over space; the five layers are summed. 0 for identical images, larger is further apart. Parameter names are
    torchvision's (`features.N`) and LPIPS's (`linN.weight`), so both published files load as they are
    (`load_lpips`)."""

    TAPS = (1, 4, 7, 9, 11)  # `features` indices of relu1 ... relu5

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        for index, channels in enumerate((64, 192, 384, 256, 256)):
            self.add_module(f"lin{index}", nn.Conv2d(channels, 1, 1, bias=False))
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS of two N x 3 x H x W RGB batches in [0, 1]."""
        x = (torch.cat([sr, hr]) * 2 - 1 - self.shift) / self.scale
        distance = 0
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.TAPS:
                unit = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                a, b = unit.chunk(2)
                lin = getattr(self, f"lin{self.TAPS.index(index)}")
                distance = distance + lin((a - b).square()).mean(dim=(1, 2, 3))
        return distance


def load_lpips(folder: str | Path) -> LPIPS:
    """LPIPS-alex in eval mode, loaded strictly from a folder holding `LPIPS_FILES` (AlexNet's conv weights and
    LPIPS v0.1's linear weights, as safetensors)."""
    from safetensors.torch import load_file

    paths = [Path(folder) / name for name in LPIPS_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"LPIPS weights missing: {', '.join(missing)} (expected {' and '.join(LPIPS_FILES)})")
    model = LPIPS()
    state = load_file(paths[0]) | load_file(paths[1])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{folder} does not hold LPIPS-alex weights: {error}") from None
    return model.eval().requires_grad_(False)


def image_tensor(image) -> torch.Tensor:
    """A uint8 image (PIL or array; grayscale is repeated to RGB) -> 1 x 3 x H x W float in [0, 1]."""
    rgb = _rgb(image)
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    return torch.from_numpy(rgb / 255).float().permute(2, 0, 1)[None]


@torch.inference_mode()
def lpips(sr, hr, model: LPIPS) -> float:
    """LPIPS-alex of two uint8 images, computed as SR papers report it: the whole RGB image, no border removed."""
    device = model.shift.device
    return float(model(image_tensor(sr).to(device), image_tensor(hr).to(device))[0])
