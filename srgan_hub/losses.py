"""SRGAN's losses (paper, Sec. 2.2): perceptual loss = content loss + 1e-3 * adversarial loss.

Content: pixel MSE, measured on the paper's [-1, 1] image range, or the VGG loss: MSE between VGG19 feature maps
phi_{i,j} (after the j-th conv's ReLU, before the i-th max-pool) of SR and HR, features rescaled by 1/12.75.
Not in the paper: Real-ESRGAN's perceptual loss, an L1 distance at five VGG19 depths.
Adversarial: -log D(G(LR)) for G, and D's binary cross-entropy of real HR against SR (on D's logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's VGG19 'features' (config E): numbers are conv widths, "M" a 2x2 max-pool.
VGG19_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
# Index (in `features`) of the ReLU that ends phi_{2,2} and phi_{5,4}.
VGG_LAYERS = {"vgg22": 8, "vgg54": 35}
VGG_RESCALE = 1 / 12.75
# Real-ESRGAN's perceptual loss (Wang et al., ICCVW 2021): L1 between the features of conv1_2, conv2_2, conv3_4,
# conv4_4 and conv5_4 (before their ReLUs; keys are `features` indices), weighted 0.1, 0.1, 1, 1, 1.
REALESRGAN_LAYERS = {2: 0.1, 7: 0.1, 16: 1.0, 25: 1.0, 34: 1.0}
CONTENT_LOSSES = ("mse", *VGG_LAYERS, "realesrgan")


@dataclass(frozen=True)
class InputConvention:
    """How a VGG19's weights expect their input: (x * scale - mean) / std for an RGB image x in [0, 1]."""

    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


# torchvision's ImageNet models: [0, 1] RGB standardised by ImageNet statistics.
TORCHVISION = InputConvention(1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The original Caffe VGG (the one the paper's 1/12.75 refers to): RGB in 0...255 minus the mean, no std.
CAFFE_INPUT = "RGB, 0..255, subtract mean [123.68,116.779,103.939], no std"
CAFFE = InputConvention(255.0, (123.68, 116.779, 103.939))
WEIGHTS_HELP = (
    "a VGG19 file that states its input convention: the original Caffe VGG19 as safetensors with metadata "
    f"input={CAFFE_INPUT!r} (e.g. vgg19_imagenet_conv.safetensors), or torchvision's vgg19 state dict "
    "(vgg19-dcbb9e9d.pth, or the same tensors as .safetensors)"
)


class VGG19Features(nn.Module):
    """VGG19's convolutional part with torchvision's parameter names (`features.N.weight`), so both supported
    weight files load as they are. Only the layers up to `last_layer` are kept; `convention` is the input
    normalisation the weights were trained with."""

    def __init__(self, last_layer: int = 35, convention: InputConvention = TORCHVISION):
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
        self.scale = convention.scale
        self.register_buffer("mean", torch.tensor(convention.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(convention.std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """`images` in [0, 1] -> the input the weights expect."""
        return (images * self.scale - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(self.normalise(images))


def read_vgg19_weights(weights: str | Path) -> tuple[dict[str, torch.Tensor], InputConvention]:
    """The tensors of a VGG19 weights file and the input convention the file itself declares.

    Caffe weights say so in their safetensors metadata (`input`); torchvision's state dict is recognised by its
    key set (the 16 convolutions and the three classifier layers). Anything else is refused: a wrong input
    convention would silently change what the VGG loss measures."""
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file {path} does not exist; expected {WEIGHTS_HELP}")
    metadata = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: no code runs
    with torch.device("meta"):  # the key names only, nothing allocated
        convs = set(VGG19Features().state_dict())
    if not convs <= set(state):
        missing = sorted(convs - set(state))
        raise ValueError(f"{path} is not a VGG19 state dict (no {', '.join(missing[:3])}...); expected {WEIGHTS_HELP}")
    if "input" in metadata:
        if metadata["input"] != CAFFE_INPUT:
            raise ValueError(f"{path} declares input {metadata['input']!r}, which is not a known convention")
        return state, CAFFE
    if {f"classifier.{i}.weight" for i in (0, 3, 6)} <= set(state):
        return state, TORCHVISION
    raise ValueError(f"{path} does not say which input convention its weights expect; expected {WEIGHTS_HELP}")


def load_vgg19(weights: str | Path, last_layer: int = 35) -> VGG19Features:
    """A frozen, eval-mode VGG19 feature extractor up to `last_layer`, loaded strictly from `weights`."""
    state, convention = read_vgg19_weights(weights)
    vgg = VGG19Features(last_layer, convention)
    vgg.load_state_dict({k: v.float() for k, v in state.items() if k in vgg.state_dict()}, strict=True)
    return vgg.eval().requires_grad_(False)


class ContentLoss(nn.Module):
    """The paper's content loss: "mse", "vgg22" or "vgg54" (or "realesrgan", Real-ESRGAN's perceptual loss over
    `REALESRGAN_LAYERS`), plus `phase_weight` times `phase_mean_error` (not in the paper). `extra_layers`: VGG
    `features` indices that `features` also returns, for a discriminator that judges them
    (`models.VGGFeatureDiscriminator`)."""

    def __init__(
        self,
        kind: str = "mse",
        vgg_weights: str | Path | None = None,
        phase_weight: float = 0.0,
        scale: int = 4,
        extra_layers: tuple[int, ...] = (),
    ):
        super().__init__()
        self.phase_weight, self.scale = phase_weight, scale
        if kind not in CONTENT_LOSSES:
            raise ValueError(f"content loss must be one of {', '.join(CONTENT_LOSSES)}, got {kind!r}")
        self.kind = kind
        if (kind != "mse" or extra_layers) and vgg_weights is None:
            raise ValueError(f"the {kind} content loss needs VGG19 weights (--vgg-weights): {WEIGHTS_HELP}")
        self.loss_layers = (
            tuple(REALESRGAN_LAYERS) if kind == "realesrgan" else (VGG_LAYERS[kind],) if kind != "mse" else ()
        )
        self.layers = tuple(sorted({*self.loss_layers, *extra_layers}))
        self.vgg = load_vgg19(vgg_weights, max(self.layers)) if self.layers else None

    def features(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[dict, dict]:
        """SR's and HR's VGG features at `layers` (HR's without a graph: it is the target), computed once for the
        loss and for a discriminator that judges them."""
        if self.vgg is None:
            return {}, {}
        with torch.no_grad():
            hr_features = vgg_taps(self.vgg, hr, self.layers)
        return vgg_taps(self.vgg, sr, self.layers), hr_features

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, features: tuple[dict, dict] | None = None) -> torch.Tensor:
        """The loss of SR against HR; `features` (from `features(sr, hr)`) saves computing them again."""
        if self.vgg is None or not self.loss_layers:
            loss = pixel_mse(sr, hr)
        else:
            sr_features, hr_features = features or self.features(sr, hr)
            loss = self.feature_distance(sr_features, hr_features)
        return loss + self.phase_weight * phase_mean_error(sr, hr, self.scale) if self.phase_weight else loss

    def feature_distance(self, sr_features: dict, hr_features: dict) -> torch.Tensor:
        """The VGG part of the loss: Real-ESRGAN's weighted L1 over five layers, or the paper's MSE at one; SR and
        HR features in the same precision (under autocast both are bf16/fp16), the distances in fp32."""
        if self.kind == "realesrgan":
            return sum(
                weight * F.l1_loss(sr_features[i].float() * VGG_RESCALE, hr_features[i].float() * VGG_RESCALE)
                for i, weight in REALESRGAN_LAYERS.items()
            )
        (layer,) = self.loss_layers
        return F.mse_loss(sr_features[layer].float() * VGG_RESCALE, hr_features[layer].float() * VGG_RESCALE)


def vgg_taps(vgg: VGG19Features, images: torch.Tensor, indices: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """The VGG features at each of `indices` of `vgg.features`: a conv's output before its ReLU, a ReLU's after it
    (ReLUs run out of place here, so that a conv's tap keeps its negative half)."""
    features, taps = vgg.normalise(images), {}
    for index, layer in enumerate(vgg.features[: max(indices) + 1]):
        features = F.relu(features) if isinstance(layer, nn.ReLU) else layer(features)
        if index in indices:
            taps[index] = features
    return taps


def phase_mean_error(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Squared mean of SR - HR (on [-1, 1]) at each sub-pixel phase and colour channel, over the batch: a pattern
    that repeats every `scale` pixels, or a colour cast. Texture averages out over the batch's pixels, so that this
    weighs it about (pixels per phase in the batch) times less than the pixel MSE does; a mean per image would
    weigh it only (pixels per phase in an image) times less, a pixel term that smooths.

    Only the crops' interior counts, two LR pixels in from each side (which keeps the phases): at a crop's edge the
    generator sees zero padding and an LR made from the crop alone, and its pattern there differs; a mean over the
    whole crop would let the edge's pattern cancel the interior's, and the interior's is the one a full image
    shows (`benchmarks/pattern_at_crop_edges.py`)."""
    margin = 2 * scale
    if min(sr.shape[-2:]) <= 2 * margin:
        raise ValueError(f"crops of {tuple(sr.shape[-2:])} px have no interior beyond the {margin}-px edge")
    residual = (sr.float() - hr.float())[..., margin:-margin, margin:-margin] * 2
    return F.pixel_unshuffle(residual, scale).mean(dim=(0, 2, 3)).square().mean()  # (B, 3 * scale^2, h, w)


def pixel_mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """MSE on the paper's [-1, 1] range (4x the MSE on [0, 1]), so that 1e-3 weighs the adversarial term as in
    the paper."""
    return F.mse_loss(sr * 2 - 1, hr * 2 - 1)


def generator_adversarial_loss(fake: torch.Tensor) -> torch.Tensor:
    """-log D(SR), G's adversarial loss (the paper's), from D's logits on SR."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """-log D(HR) - log(1 - D(SR)), what D minimises, from its logits on HR and SR."""
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )
