"""Model card templates (Jinja, filled by huggingface_hub's `ModelCard.from_template`).

`save_pretrained(folder, model_card_kwargs={...})` fills the placeholders: `model_name`, `training`
(how it was trained: command, data, steps, hardware), `degradation` (the training inputs: "bicubic" by default,
"realworld" for photos) and `evaluation` (the table written by `srgan_hub.evaluate.write_results_to_card`).
Missing values say so instead of inventing numbers.
"""

GENERATOR_CARD = """---
{{ card_data }}
---

# {{ model_name | default("SRGAN generator (SRResNet)", true) }}

A super-resolution generator from [SRGAN Hub]({{ repo_url }}), an implementation of
*Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network*
(Ledig et al., CVPR 2017, [arXiv:1609.04802]({{ paper_url }})).

## Usage

```python
from srgan_hub import SRGenerator, upscale

model = SRGenerator.from_pretrained("{{ repo_id | default("path/to/this/folder", true) }}")
upscale("photo.png", model).save("photo_x4.png")
```

## ONNX and NCNN (Upscayl, chaiNNer)

`srgan-export <this folder or repo id> --format onnx` (or `--format ncnn`) writes this model for onnxruntime and
chaiNNer (ONNX: input `input`, output `output`, RGB in [0, 1], any size) or for Upscayl and chaiNNer (NCNN:
`.param` + `.bin` with the scale in the name, blobs `data` / `output`), with a README that says how to load them.

## Architecture

SRResNet (paper Fig. 4): 9x9 conv + PReLU, residual blocks (conv3x3-BN-PReLU-conv3x3-BN + identity), conv3x3-BN
with a long skip, x2 upsampling stages (conv, PixelShuffle, PReLU), 9x9 conv to RGB. Input RGB in [0, 1];
output (tanh + 1) / 2 in [0, 1]. The exact configuration is in `config.json`.

## Training data

{{ training | default("Not recorded for this checkpoint.", true) }}

## Evaluation

{{ evaluation | default("Not evaluated yet. Run `srgan-eval --model <this folder> --data <HR folders>`.", true) }}

## Intended use

{% if degradation == "realworld" -%}
Upscaling real photographs (web and phone JPEGs, noise, blur): trained on Real-ESRGAN's second-order
degradations (blur, resize, noise, JPEG, twice; `--clean-prob` in the command above is the share of clean bicubic
inputs). Works on any image size through tiled inference (`srgan_hub.upscale`).

## Limitations

- It removes what it takes for noise and compression: fine texture of the scene may be smoothed with it, and on
  clean inputs it scores a little below the models trained on bicubic inputs only.
{%- else -%}
Upscaling natural photographs that were downscaled with a bicubic kernel (the degradation the model was trained
on). Works on any image size through tiled inference (`srgan_hub.upscale`).

## Limitations

- Trained for bicubic degradation only: real-world blur, noise and JPEG artefacts are not removed, and may be
  amplified.
{%- endif %}
- GAN-trained models invent plausible texture; do not use them where fidelity matters (medical, forensic,
  evidence): details in the output may not exist in the scene.
- PSNR/SSIM reward blur; perceptual quality and these metrics disagree by design.
"""

DISCRIMINATOR_CARD = """---
{{ card_data }}
---

# {{ model_name | default("SRGAN discriminator", true) }}

The discriminator of an SRGAN trained with [SRGAN Hub]({{ repo_url }}) ([paper]({{ paper_url }})). It is
published for fine-tuning the matching generator; it is not an image classifier for general use.

## Architecture

conv3x3 + LeakyReLU(0.2), seven conv3x3-BN-LeakyReLU blocks (64/2, 128/1, 128/2, 256/1, 256/2, 512/1, 512/2),
adaptive average pooling to 6x6, Dense(1024) + LeakyReLU, Dense(1) returning a logit.

## Training data

{{ training | default("Not recorded for this checkpoint.", true) }}

## Intended use

Initialising the discriminator when continuing adversarial training of the paired generator.

## Limitations

Its output only means something relative to the generator it was trained against.
"""

VGG_FEATURE_DISCRIMINATOR_CARD = DISCRIMINATOR_CARD.replace(
    """conv3x3 + LeakyReLU(0.2), seven conv3x3-BN-LeakyReLU blocks (64/2, 128/1, 128/2, 256/1, 256/2, 512/1, 512/2),
adaptive average pooling to 6x6, Dense(1024) + LeakyReLU, Dense(1) returning a logit.""",
    """Heads on frozen VGG19 features (the ones the VGG content loss computes; the layers are `taps` in
`config.json`): per layer a spectral-normalised conv3x3 + LeakyReLU(0.2) + conv1x1 to a logit per position,
averaged over positions and summed over layers (the Projected GAN idea; not in the SRGAN paper). It takes VGG19
features, not images: `srgan_hub.losses.vgg_taps` computes them.""",
)
