"""The two networks of SRGAN (Ledig et al., CVPR 2017, arXiv:1609.04802).

SRGenerator is the paper's SRResNet: a deep residual network that maps a low-resolution (LR) image to a
high-resolution (HR) one. SRDiscriminator is the VGG-style classifier that tells real HR crops from generated
ones. Both are `PyTorchModelHubMixin` models: `save_pretrained` writes config.json + model.safetensors + a model
card, and `from_pretrained` reads a local folder or a Hub repo id, strictly, and only safetensors.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from srgan_hub.model_card import DISCRIMINATOR_CARD, GENERATOR_CARD, VGG_FEATURE_DISCRIMINATOR_CARD

REPO_URL = "https://github.com/srgan-hub/srgan-hub"
PAPER_URL = "https://arxiv.org/abs/1609.04802"

SCALES = (2, 4, 8)
UPSAMPLERS = ("pixelshuffle", "transpose")
BLOCKS = ("residual", "inception")
MAX_CHANNELS = 512
MAX_BLOCKS = 64


class CheckpointMismatchError(ValueError):
    """The weights file does not fit the architecture that config.json describes."""


# --------------------------------------------------------------------------------------------------------------
# Config validation: config.json comes from anywhere, so every field is checked before a layer is built.


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


# --------------------------------------------------------------------------------------------------------------
# Loading: strict by default and safetensors only (huggingface_hub's default is strict=False and falls back to
# pickles, which can run code).


class _StrictSafetensorsHubMixin(PyTorchModelHubMixin):
    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ):
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            weights_file = os.path.join(model_id, "model.safetensors")
            if not os.path.isfile(weights_file):
                raise FileNotFoundError(f"{model_id} has no model.safetensors (only safetensors weights are read)")
        else:
            weights_file = hf_hub_download(
                repo_id=model_id,
                filename="model.safetensors",
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        load_weights(model, weights_file, strict=strict, device=map_location)
        return model.eval()


def load_weights(model: nn.Module, weights_file: str | Path, *, strict: bool = True, device: str = "cpu") -> None:
    """Load a safetensors file into `model`; with `strict`, any missing, extra or reshaped tensor is an error
    (`CheckpointMismatchError`, naming the file and the architecture)."""
    try:
        safetensors.torch.load_model(model, str(weights_file), strict=strict, device=device)
    except RuntimeError as error:  # missing/unexpected keys, or a tensor of another shape
        raise CheckpointMismatchError(
            f"{weights_file} does not match {type(model).__name__}({model.config_summary()}): {error}. "
            "Was config.json edited, or saved by another architecture?"
        ) from error


# --------------------------------------------------------------------------------------------------------------
# Generator building blocks


class ResidualBlock(nn.Module):
    """The paper's block: conv3x3-BN-PReLU-conv3x3-BN, plus the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).add_(x)  # in place: the block's output is a fresh tensor (and add needs no inputs
        # for its backward), so this saves a full-size allocation per block


def _conv_bn_prelu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(),
    )


class InceptionResidualBlock(nn.Module):
    """Inception-residual block: 1x1, 3x3 and two stacked 3x3 branches side by side, concatenated, fused by a
    1x1 conv and added to the input. It sees the same 5x5 neighbourhood as the paper's block, at several scales."""

    def __init__(self, channels: int):
        super().__init__()
        branch = max(channels // 2, 1)
        self.branch1 = _conv_bn_prelu(channels, branch, 1)
        self.branch3 = _conv_bn_prelu(channels, branch, 3)
        self.branch5 = nn.Sequential(_conv_bn_prelu(channels, branch, 3), _conv_bn_prelu(branch, branch, 3))
        self.fuse = nn.Sequential(nn.Conv2d(3 * branch, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.cat([self.branch1(x), self.branch3(x), self.branch5(x)], dim=1)
        return self.fuse(branches).add_(x)


class PixelShuffleUpsample(nn.Sequential):
    """x2 upsampling as in the paper: conv 64->256, PixelShuffle(2) (sub-pixel convolution), PReLU."""

    def __init__(self, channels: int):
        super().__init__(nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU())


def conv_after_pixel_shuffle(conv: nn.Conv2d, x: torch.Tensor, factor: int) -> torch.Tensor:
    """`conv(F.pixel_shuffle(x, factor))`, computed as `F.pixel_shuffle(conv'(x), factor)`: the same function.

    Each output sub-pixel phase of a k x k conv on the shuffled map is a conv on `x` itself, with factor^2 times
    the input channels (one group per input phase) and a ceil((k // 2) / factor)-pixel reach. Stacking the
    phases gives one conv with factor^2 times the output channels, then one shuffle. For the generator's last
    layer this turns a 3-channel 9x9 conv at HR size (slow in oneDNN) into a 12-channel 5x5 conv at half that
    size, and the largest feature map (64 channels at HR size) is never materialised: faster training and
    inference on CPU, and less memory. The weight is rearranged on every call (a 77k-element gather), so gradients
    reach the layer's own 9x9 weight and checkpoints keep the paper's layout."""
    weight = subpixel_weight(conv.weight, factor)
    bias = None if conv.bias is None else conv.bias.repeat_interleave(factor**2)
    return F.pixel_shuffle(F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2), factor)


def subpixel_weight(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """The weight of `conv_after_pixel_shuffle`'s pre-shuffle conv, gathered from a "same"-padded odd k x k one."""
    out_channels, in_channels, k, _ = weight.shape
    reach = -(-(k // 2) // factor)  # ceil: pre-shuffle pixels one tap can reach
    taps, phases = torch.arange(-reach, reach + 1), torch.arange(factor)
    # HR offset that tap m covers, from input phase i to output phase a: factor * m + i - a. Offsets beyond the
    # kernel index the zeros of a one-pixel padding.
    offset = factor * taps + phases[None, :, None] - phases[:, None, None]  # [a, i, m]
    index = ((offset + k // 2).clamp(-1, k) + 1).flatten().to(weight.device)
    gathered = F.pad(weight, (1, 1, 1, 1))[:, :, index][:, :, :, index]
    size = 2 * reach + 1
    gathered = gathered.reshape(out_channels, in_channels, factor, factor, size, factor, factor, size)
    # (out, in, a, i, m, b, j, n) -> (out, a, b | in, i, j | m, n): PixelShuffle's channel order on both sides
    return gathered.permute(0, 2, 5, 1, 3, 6, 4, 7).reshape(
        out_channels * factor**2, in_channels * factor**2, size, size
    )


class TransposeUpsample(nn.Sequential):
    """x2 upsampling with a conv and a learned transposed conv (the UpscalingGAN design)."""

    def __init__(self, channels: int):
        super().__init__(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.PReLU(),
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
            nn.PReLU(),
        )


class SRGenerator(
    nn.Module,
    _StrictSafetensorsHubMixin,
    library_name="srgan-hub",
    pipeline_tag="image-to-image",
    license="apache-2.0",
    tags=["super-resolution", "srgan", "srresnet", "image-to-image"],
    repo_url=REPO_URL,
    paper_url=PAPER_URL,
    model_card_template=GENERATOR_CARD,
):
    """SRResNet, the SRGAN generator.

    Input: float RGB tensor N x 3 x H x W with values in [0, 1] (the paper's LR range).
    Output: N x 3 x (scale*H) x (scale*W) in [0, 1].

    The paper scales HR images to [-1, 1] and ends the network in tanh. We end it in (tanh(x) + 1) / 2, the same
    function mapped affinely onto [0, 1]: output = (paper_output + 1) / 2. An MSE on [0, 1] is the paper's MSE
    divided by 4, which Adam's scale invariance makes equivalent.

    Layout (paper, Fig. 4): 9x9 conv + PReLU; `num_blocks` residual blocks; conv3x3 + BN with a long skip from the
    first layer; log2(scale) x2 upsampling stages; 9x9 conv to RGB.

    Args:
        scale: 2, 4 or 8.
        num_channels: feature width (paper: 64).
        num_blocks: residual blocks (paper: 16).
        upsampler: "pixelshuffle" (paper) or "transpose".
        block: "residual" (paper) or "inception".
        base_model: for a GAN-trained generator, the PSNR-oriented generator it was fine-tuned from (a Hub id or a
            folder); `upscale(..., detail=...)` blends the two.
    """

    def __init__(
        self,
        scale: int = 4,
        num_channels: int = 64,
        num_blocks: int = 16,
        upsampler: str = "pixelshuffle",
        block: str = "residual",
        base_model: str | None = None,
    ):
        super().__init__()
        _check_choice("scale", scale, SCALES)
        _check_int("num_channels", num_channels, 1, MAX_CHANNELS)
        _check_int("num_blocks", num_blocks, 1, MAX_BLOCKS)
        _check_choice("upsampler", upsampler, UPSAMPLERS)
        _check_choice("block", block, BLOCKS)
        if base_model is not None and not isinstance(base_model, str):
            raise ValueError(f"base_model must be a Hub id or folder name, got {base_model!r}")
        self.scale, self.num_channels, self.num_blocks = scale, num_channels, num_blocks
        self.upsampler, self.block, self.base_model = upsampler, block, base_model

        Block = ResidualBlock if block == "residual" else InceptionResidualBlock
        Upsample = PixelShuffleUpsample if upsampler == "pixelshuffle" else TransposeUpsample
        self.head = nn.Sequential(nn.Conv2d(3, num_channels, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*[Block(num_channels) for _ in range(num_blocks)])
        self.body_tail = nn.Sequential(
            nn.Conv2d(num_channels, num_channels, 3, padding=1), nn.BatchNorm2d(num_channels)
        )
        self.upsample = nn.Sequential(*[Upsample(num_channels) for _ in range(int(math.log2(scale)))])
        self.tail = nn.Conv2d(num_channels, 3, 9, padding=4)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if self.upsampler != "pixelshuffle":
            return self.forward_in_papers_layer_order(lr)  # no shuffle to move the tail conv across
        features = self.head(lr)
        features = self.body_tail(self.body(features)).add_(features)
        # The paper's tail(upsample(features)), with the 9x9 tail conv moved before the last shuffle (same
        # function, faster; see conv_after_pixel_shuffle). The PReLU has one slope, so it commutes with the shuffle.
        *stages, (conv, _shuffle, prelu) = self.upsample
        for stage in stages:
            features = stage(features)
        features = prelu(conv(features))  # rebinding frees the input at inference: lower peak memory
        return (torch.tanh(conv_after_pixel_shuffle(self.tail, features, 2)) + 1) / 2

    def forward_in_papers_layer_order(self, lr: torch.Tensor) -> torch.Tensor:
        """The same function as `forward`, with the 9x9 conv after the last PixelShuffle as drawn in the paper:
        the reference `forward` is tested against, and the plain baseline of benchmarks/bench_inference.py."""
        features = self.head(lr)
        features = self.body_tail(self.body(features)).add_(features)
        return (torch.tanh(self.tail(self.upsample(features))) + 1) / 2

    def architecture(self) -> dict[str, Any]:
        """The config fields that shape the network (`base_model` aside)."""
        return {
            "scale": self.scale,
            "num_channels": self.num_channels,
            "num_blocks": self.num_blocks,
            "upsampler": self.upsampler,
            "block": self.block,
        }

    def config_summary(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.architecture().items())

    @property
    def receptive_margin(self) -> int:
        """How many LR pixels beyond a tile's edge can change its output: the overlap tiled inference needs for
        results equal to whole-image inference. Each 3x3 conv at LR resolution reaches one pixel, a 9x9 four."""
        lr_reach = 4 + 2 * self.num_blocks + 1  # head, body (two 3x3 deep, in either block), body_tail
        hr_reach = 0.0  # reach of the upsampling convs and the tail, in LR pixels
        for stage in range(int(math.log2(self.scale))):
            hr_reach += (1 + (1 if self.upsampler == "transpose" else 0)) / 2**stage
        hr_reach += 4 / self.scale
        return lr_reach + math.ceil(hr_reach)


# --------------------------------------------------------------------------------------------------------------
# Discriminator


# The Hub metadata both discriminators publish with.
DISCRIMINATOR_HUB = {
    "library_name": "srgan-hub",
    "pipeline_tag": "image-classification",
    "license": "apache-2.0",
    "tags": ["super-resolution", "srgan", "discriminator"],
    "repo_url": REPO_URL,
    "paper_url": PAPER_URL,
}


class SRDiscriminator(
    nn.Module, _StrictSafetensorsHubMixin, **DISCRIMINATOR_HUB, model_card_template=DISCRIMINATOR_CARD
):
    """The SRGAN discriminator: is this HR crop real or generated?

    Input: N x 3 x H x W in [0, 1], H and W >= 16. Output: N x 1 logits (the sigmoid lives in the loss, which is
    stable in half precision). Adaptive average pooling to 6x6 before the dense layers lets any crop size work;
    at the paper's 96x96 the pooling is the identity and the network is exactly the paper's.
    """

    STAGES = ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))  # (width multiple, stride) after the stem
    total_stride = math.prod(stride for _, stride in STAGES)  # 16: D's gradient repeats every 16 pixels

    def __init__(self, num_channels: int = 64, dense_features: int = 1024):
        super().__init__()
        _check_int("num_channels", num_channels, 1, MAX_CHANNELS)
        _check_int("dense_features", dense_features, 1, 4096)
        self.num_channels, self.dense_features = num_channels, dense_features
        layers: list[nn.Module] = [nn.Conv2d(3, num_channels, 3, padding=1), nn.LeakyReLU(0.2)]
        width = num_channels
        for multiple, stride in self.STAGES:
            out = num_channels * multiple
            layers += [nn.Conv2d(width, out, 3, stride=stride, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            width = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(width * 36, dense_features), nn.LeakyReLU(0.2), nn.Linear(dense_features, 1)
        )

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        if hr.shape[-1] < 16 or hr.shape[-2] < 16:
            raise ValueError(f"SRDiscriminator needs crops of at least 16x16 pixels, got {tuple(hr.shape[-2:])}")
        # The paper feeds HR in [-1, 1]; keep that scale inside so its weights and ours mean the same.
        return self.classifier(self.pool(self.features(hr * 2 - 1)))

    def config_summary(self) -> str:
        return f"num_channels={self.num_channels}, dense_features={self.dense_features}"


class VGGFeatureDiscriminator(
    nn.Module, _StrictSafetensorsHubMixin, **DISCRIMINATOR_HUB, model_card_template=VGG_FEATURE_DISCRIMINATOR_CARD
):
    """A discriminator that judges the frozen VGG19 features the content loss computes anyway: one small head per
    tapped layer (conv3x3 + LeakyReLU + conv1x1 to a logit per position, spectral-normalised), the mean logit of
    each head summed over the heads. The idea of Projected GANs (Sauer et al., NeurIPS 2021): a pretrained feature
    trunk makes D cheap and quick to learn. Not in the SRGAN paper.

    Input: {VGG `features` index: N x C x H x W} for each of `taps` (e.g. `losses.vgg_taps`). Output: N x 1 logits.
    """

    def __init__(self, taps: tuple[int, ...] = (8, 17, 26, 35), width: int = 32):
        super().__init__()
        taps = tuple(taps)
        for tap in taps:
            _check_int("tap", tap, 1, 35)
        _check_int("width", width, 1, MAX_CHANNELS)
        self.taps, self.width = taps, width
        channels = vgg19_widths()
        self.heads = nn.ModuleList(
            nn.Sequential(
                spectral_norm(nn.Conv2d(channels[tap], width, 3, padding=1)),
                nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(width, 1, 1)),
            )
            for tap in taps
        )

    # The original VGG19's features run into the hundreds; the paper scales them by 1/12.75 in its VGG loss, and the
    # heads see them at that scale, so that D's logits (and G's adversarial loss) start near the paper D's.
    FEATURE_SCALE = 1 / 12.75

    def forward(self, features: dict[int, torch.Tensor]) -> torch.Tensor:
        return sum(
            head(features[tap] * self.FEATURE_SCALE).mean(dim=(2, 3))
            for tap, head in zip(self.taps, self.heads, strict=True)
        )

    def config_summary(self) -> str:
        return f"taps={self.taps}, width={self.width}"


def vgg19_widths() -> dict[int, int]:
    """The channel count at each index of VGG19's `features` (torchvision's layout: conv, ReLU, ..., max-pool)."""
    from srgan_hub.losses import VGG19_LAYOUT

    widths, index, channels = {}, 0, 3
    for item in VGG19_LAYOUT:
        if item == "M":
            widths[index] = channels
            index += 1
        else:
            channels = item
            widths[index] = widths[index + 1] = channels
            index += 2
    return widths
