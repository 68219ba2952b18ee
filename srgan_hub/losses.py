"""SRGAN's losses (paper, Sec. 2.2): perceptual loss = content loss + 1e-3 * adversarial loss.

Content: pixel MSE, measured on the paper's [-1, 1] image range, or the VGG loss: MSE between VGG19 feature maps
phi_{i,j} (after the j-th conv's ReLU, before the i-th max-pool) of SR and HR, features rescaled by 1/12.75.
Adversarial: -log D(G(LR)) (standard GAN, written as BCE-with-logits) or the relativistic-average GAN.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# torchvision's VGG19 'features' (config E): numbers are conv widths, "M" a 2x2 max-pool.
VGG19_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
# Index (in `features`) of the ReLU that ends phi_{2,2} and phi_{5,4}.
VGG_LAYERS = {"vgg22": 8, "vgg54": 35}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_RESCALE = 1 / 12.75


class VGG19Features(nn.Module):
    """VGG19's convolutional part with torchvision's parameter names (`features.N.weight`), so the official
    ImageNet weights load as they are. Only the layers up to `last_layer` are kept."""

    def __init__(self, last_layer: int = 35):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers[: last_layer + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`images` in [0, 1]; normalised with ImageNet statistics, as the weights expect."""
        return self.features((images - self.mean) / self.std)


def load_vgg19_state(weights: str | Path | None) -> dict[str, torch.Tensor]:
    """VGG19 ImageNet weights from a file (torchvision's .pth, read with weights_only=True, or a .safetensors
    conversion) or, with no file, from torchvision's URL through torch.hub's cache."""
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"--vgg-weights {weights} does not exist")
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights))
        return torch.load(weights, map_location="cpu", weights_only=True)  # tensors only: no code runs
    try:
        return torch.hub.load_state_dict_from_url(VGG19_URL, map_location="cpu", weights_only=True)
    except Exception as error:  # no network, proxy, DNS...: name both ways out
        raise RuntimeError(
            f"VGG19 ImageNet weights are needed for the VGG content loss and could not be downloaded from "
            f"{VGG19_URL} ({type(error).__name__}: {error}). Either pass --vgg-weights FILE (torchvision's "
            f"vgg19-dcbb9e9d.pth or a safetensors conversion), or run once with network access so that torch.hub "
            f"caches it in {os.path.join(torch.hub.get_dir(), 'checkpoints')}."
        ) from error


def build_vgg(layer: str, weights: str | Path | None) -> VGG19Features:
    """A frozen VGG19 feature extractor ending at `layer` ("vgg22" or "vgg54")."""
    vgg = VGG19Features(VGG_LAYERS[layer])
    state = {k: v for k, v in load_vgg19_state(weights).items() if k in vgg.state_dict()}
    vgg.load_state_dict(state, strict=True)
    return vgg.eval().requires_grad_(False)


class ContentLoss(nn.Module):
    """The paper's content loss: "mse", "vgg22" or "vgg54", plus `pixel_weight` times the pixel MSE."""

    def __init__(self, kind: str = "mse", pixel_weight: float = 0.0, vgg_weights: str | Path | None = None):
        super().__init__()
        if kind not in ("mse", *VGG_LAYERS):
            raise ValueError(f"content loss must be 'mse', 'vgg22' or 'vgg54', got {kind!r}")
        self.kind, self.pixel_weight = kind, pixel_weight
        self.vgg = build_vgg(kind, vgg_weights) if kind in VGG_LAYERS else None

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        pixel = pixel_mse(sr, hr)
        if self.vgg is None:
            return pixel
        vgg = F.mse_loss(self.vgg(sr) * VGG_RESCALE, self.vgg(hr) * VGG_RESCALE)
        return vgg + self.pixel_weight * pixel


def pixel_mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """MSE on the paper's [-1, 1] range (4x the MSE on [0, 1]), so that 1e-3 weighs the adversarial term as in
    the paper."""
    return F.mse_loss(sr * 2 - 1, hr * 2 - 1)


class AdversarialLoss(nn.Module):
    """ "standard": D maximises log D(HR) + log(1 - D(SR)); G minimises -log D(SR) (the paper's choice).
    "relativistic": the relativistic-average GAN (ESRGAN): D judges whether HR looks more real than the average SR
    and G the reverse. Inputs are logits."""

    def __init__(self, kind: str = "standard"):
        super().__init__()
        if kind not in ("standard", "relativistic"):
            raise ValueError(f"adversarial loss must be 'standard' or 'relativistic', got {kind!r}")
        self.kind = kind

    @staticmethod
    def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.kind == "standard":
            return self._bce(real, 1.0) + self._bce(fake, 0.0)
        return (self._bce(real - fake.mean(), 1.0) + self._bce(fake - real.mean(), 0.0)) / 2

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """`real` is only used by the relativistic loss (pass D(HR), detached)."""
        if self.kind == "standard":
            return self._bce(fake, 1.0)
        return (self._bce(real - fake.mean(), 0.0) + self._bce(fake - real.mean(), 1.0)) / 2
