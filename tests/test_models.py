"""The networks, their Hub packaging and strict, safe loading (issue: foundation)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard

from srgan_hub import CheckpointMismatchError, SRDiscriminator, SRGenerator


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("upsampler", ["pixelshuffle", "transpose"])
@pytest.mark.parametrize("block", ["residual", "inception"])
def test_generator_shapes_and_range(scale, upsampler, block):
    torch.manual_seed(0)
    model = SRGenerator(scale=scale, num_blocks=2, num_channels=16, upsampler=upsampler, block=block).eval()
    lr = torch.rand(2, 3, 13, 10)
    with torch.no_grad():
        sr = model(lr * 40 - 20)  # far outside [0, 1] on purpose: the output range must still hold
    assert sr.shape == (2, 3, 13 * scale, 10 * scale)
    assert sr.min() >= 0 and sr.max() <= 1


def test_default_generator_is_the_papers_srresnet():
    model = SRGenerator()
    assert sum(p.numel() for p in model.parameters()) == 1_549_462
    assert len(model.body) == 16 and len(model.upsample) == 2
    assert isinstance(model.head[0], torch.nn.Conv2d) and model.head[0].kernel_size == (9, 9)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_computes_the_papers_layer_order_with_the_same_gradients(scale):
    """forward() runs the last 9x9 conv before the last PixelShuffle; outputs and every gradient must equal the
    paper's order tail(upsample(features)), in training mode, through channels_last as train.py runs it."""
    torch.manual_seed(scale)
    model = SRGenerator(scale=scale, num_blocks=2, num_channels=16).train().to(memory_format=torch.channels_last)
    lr = torch.rand(2, 3, 11, 14).contiguous(memory_format=torch.channels_last)

    target = torch.rand(2, 3, 11 * scale, 14 * scale)
    outputs, gradients = [], []
    for forward in (model, model.forward_in_papers_layer_order):
        model.zero_grad()
        sr = forward(lr)
        ((sr - target) ** 2).mean().backward()
        outputs.append(sr.detach())
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
    assert (outputs[0] - outputs[1]).abs().max() <= 1e-5
    for name, grad in gradients[0].items():
        torch.testing.assert_close(grad, gradients[1][name], rtol=1e-4, atol=1e-6, msg=name)
    assert gradients[0]["tail.weight"].abs().sum() > 0


def test_receptive_margin_bounds_the_influence_of_a_pixel():
    """Changing one LR pixel must not change the output farther than `receptive_margin` LR pixels away."""
    torch.manual_seed(0)
    model = SRGenerator(num_blocks=3, num_channels=8).eval()
    margin = model.receptive_margin
    lr = torch.rand(1, 3, 2 * margin + 21, 2 * margin + 21)
    centre = margin + 10
    poked = lr.clone()
    poked[..., centre, centre] += 0.5
    with torch.no_grad():
        diff = (model(poked) - model(lr)).abs().amax(dim=(0, 1))
    rows = torch.nonzero(diff.amax(dim=1) > 0).flatten()
    reach = max(centre * 4 - int(rows.min()), int(rows.max()) - (centre * 4 + 3))
    assert 0 < reach <= margin * 4


@pytest.mark.parametrize("size", [96, 128])
def test_discriminator_returns_one_logit_per_image(size):
    model = SRDiscriminator().eval()
    with torch.no_grad():
        logits = model(torch.rand(3, 3, size, size))
    assert logits.shape == (3, 1)
    assert torch.isfinite(logits).all()
    assert logits.std() > 0  # one logit per image, not a constant


def test_discriminator_rejects_tiny_crops():
    with pytest.raises(ValueError, match="16x16"):
        SRDiscriminator()(torch.rand(1, 3, 12, 12))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SRGenerator(scale=2, num_blocks=3, num_channels=16, block="inception").eval()
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "scale": 2,
        "num_channels": 16,
        "num_blocks": 3,
        "upsampler": "pixelshuffle",
        "block": "inception",
        "base_model": None,  # a GAN generator names the PSNR model it was fine-tuned from
    }
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "srgan-hub"
    assert card.data.pipeline_tag == "image-to-image"
    assert card.data.license == "apache-2.0"
    assert "super-resolution" in card.data.tags
    for section in ("## Architecture", "## Training data", "## Evaluation", "## Intended use", "## Limitations"):
        assert section in card.text

    assert "bicubic degradation only" in card.text and "real photographs" not in card.text
    model.save_pretrained(tmp_path / "real", model_card_kwargs={"degradation": "realworld"})
    real = ModelCard.load(tmp_path / "real" / "README.md").text
    assert "real photographs" in real and "bicubic degradation only" not in real and "## Limitations" in real

    loaded = SRGenerator.from_pretrained(tmp_path)
    assert not loaded.training
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(lr), loaded(lr))


def test_discriminator_round_trip(tmp_path):
    model = SRDiscriminator(num_channels=8, dense_features=32).eval()
    model.save_pretrained(tmp_path)
    loaded = SRDiscriminator.from_pretrained(tmp_path)
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def _lay_out_hub_cache(cache, repo_id, folder):
    """The documented cache layout: models--ORG--NAME/refs/main -> commit; snapshots/<commit>/<files>."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    return commit


def test_offline_load_by_repo_id_from_hub_cache(tmp_path):
    torch.manual_seed(1)
    model = SRGenerator(num_blocks=2, num_channels=8).eval()
    model.save_pretrained(tmp_path / "saved")
    _lay_out_hub_cache(tmp_path / "cache", "srgan-hub/tiny-x4", tmp_path / "saved")
    loaded = SRGenerator.from_pretrained("srgan-hub/tiny-x4", cache_dir=tmp_path / "cache")
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(lr), loaded(lr))


def test_offline_load_by_repo_id_through_hf_hub_cache_variable(tmp_path):
    """The way a user meets it: HF_HUB_CACHE + HF_HUB_OFFLINE=1 in a fresh process, no cache_dir argument."""
    model = SRGenerator(num_blocks=1, num_channels=8)
    model.save_pretrained(tmp_path / "saved")
    _lay_out_hub_cache(tmp_path / "cache", "org/srgan-x4", tmp_path / "saved")
    env = os.environ | {"HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    code = "from srgan_hub import SRGenerator; m = SRGenerator.from_pretrained('org/srgan-x4'); print(m.num_blocks)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("1")


def test_mismatched_checkpoint_raises(tmp_path):
    SRGenerator(num_blocks=4, num_channels=16).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_blocks"] = 3  # the weights hold 4 blocks
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match="Unexpected key"):
        SRGenerator.from_pretrained(tmp_path)
    config["num_blocks"], config["num_channels"] = 4, 8
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match="size mismatch"):
        SRGenerator.from_pretrained(tmp_path)


def test_pickle_weights_are_never_read(tmp_path):
    model = SRGenerator(num_blocks=1, num_channels=8)
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="only safetensors"):
        SRGenerator.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scale": 3}, "scale"),
        ({"scale": "4"}, "scale"),
        ({"num_blocks": 0}, "num_blocks"),
        ({"num_blocks": 65}, "num_blocks"),
        ({"num_blocks": 2.5}, "num_blocks"),
        ({"num_channels": 513}, "num_channels"),
        ({"num_channels": -1}, "num_channels"),
        ({"upsampler": "nearest"}, "upsampler"),
        ({"block": "dense"}, "block"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SRGenerator(**kwargs)


def test_hostile_config_json_is_rejected_before_building(tmp_path):
    SRGenerator(num_blocks=1, num_channels=8).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_channels"] = 10**6  # would allocate terabytes if trusted
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="num_channels"):
        SRGenerator.from_pretrained(tmp_path)


def test_bad_discriminator_config():
    with pytest.raises(ValueError, match="num_channels"):
        SRDiscriminator(num_channels=0)


def test_core_import_stays_light():
    code = (
        "import sys, srgan_hub; heavy = [m for m in ('gradio', 'accelerate', 'datasets') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
