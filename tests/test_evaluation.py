"""MATLAB-exact degradation, literature-protocol metrics, srgan-eval and model-index cards (issue: evaluation)."""

import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from PIL import Image, ImageFilter
from safetensors.torch import save_file

from srgan_hub import SRGenerator
from srgan_hub.degradations import bicubic_downsample, gaussian_downsample, imresize
from srgan_hub.evaluate import bicubic_upscale, evaluate_pairs, load_folder, write_results_to_card
from srgan_hub.metrics import artefact_metrics, blockiness, load_lpips, lpips, psnr, rgb_to_y, ssim

SETS = ["Set5", "Set14", "BSD100", "Urban100_subset20"]


@pytest.mark.parametrize("dataset", SETS)
def test_imresize_matches_matlab_lr_files(data_dir, dataset):
    equal = total = worst = 0
    for lr_file in sorted((data_dir / "benchmarks" / "LR_x4_matlab_bicubic" / dataset).glob("*.png")):
        lr = np.asarray(Image.open(lr_file))
        hr = np.asarray(Image.open(data_dir / "benchmarks" / dataset / lr_file.name))
        hr = hr[: lr.shape[0] * 4, : lr.shape[1] * 4]  # Set14: crop HR to a multiple of 4 first
        ours = imresize(hr, 1 / 4)
        assert ours.shape == lr.shape and ours.dtype == np.uint8
        diff = np.abs(ours.astype(int) - lr.astype(int))
        equal, total, worst = equal + (diff == 0).sum(), total + diff.size, max(worst, diff.max())
    assert equal / total >= 0.999
    assert worst <= 1


def test_imresize_types_and_shapes(data_dir):
    pil = Image.open(data_dir / "benchmarks" / "Set5" / "bird.png")
    small = imresize(pil, 0.25)
    assert isinstance(small, Image.Image) and small.mode == "RGB" and small.size == (72, 72)
    gray = imresize(pil.convert("L"), 0.5)
    assert gray.mode == "L" and gray.size == (144, 144)
    batch = torch.rand(2, 3, 40, 24, dtype=torch.float64)
    assert imresize(batch, 0.25).shape == (2, 3, 10, 6)
    assert imresize(batch, 2).shape == (2, 3, 80, 48)
    # the float path and the uint8 path agree up to the uint8 path's rounding
    array = np.asarray(pil)[:64, :64]
    as_float = imresize(torch.from_numpy(array.astype(np.float64)).permute(2, 0, 1), 0.25).permute(1, 2, 0).numpy()
    assert np.abs(as_float - imresize(array, 0.25)).max() <= 1.0


def test_imresize_preserves_constants_and_shrinks_by_averaging():
    flat = np.full((32, 32), 77, np.uint8)
    assert (imresize(flat, 0.25) == 77).all() and (imresize(flat, 3) == 77).all()
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    interior = imresize(checker, 0.25)[1:-1, 1:-1].astype(int)  # (edge repetition shifts the border a little)
    assert np.abs(interior - 128).max() <= 1  # anti-aliased: the checkerboard averages out, no moire


def test_imresize_rejects_bad_input():
    with pytest.raises(ValueError, match="scale"):
        imresize(np.zeros((8, 8), np.uint8), 0)
    with pytest.raises(TypeError, match="float"):
        imresize(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0.5)


def test_batch_degradations_for_training():
    hr = torch.rand(4, 3, 96, 96)
    lr = bicubic_downsample(hr, 4)
    assert lr.shape == (4, 3, 24, 24) and lr.min() >= 0 and lr.max() <= 1
    with pytest.raises(ValueError, match="multiple"):
        bicubic_downsample(torch.rand(1, 3, 30, 32), 4)
    blurred = gaussian_downsample(hr, 4, sigma=1.5)
    assert blurred.shape == (4, 3, 24, 24)
    assert torch.allclose(gaussian_downsample(torch.full((1, 3, 32, 32), 0.3), 4), torch.tensor(0.3))
    # more blur, less detail left
    assert gaussian_downsample(hr, 4, sigma=3.0).std() < gaussian_downsample(hr, 4, sigma=0.8).std()


def test_artefact_metrics_measure_a_checkerboard_a_colour_cast_and_blur(data_dir):
    hr = Image.open(data_dir / "benchmarks" / "Set14" / "baboon.png").convert("RGB")
    image = np.asarray(hr, dtype=np.float64)[:200, :200]
    rng = np.random.default_rng(0)

    def metrics(sr):
        return artefact_metrics([sr], [image], scale=4)

    clean = metrics(image)
    assert clean == {"colour_shift": 0.0, "phase_pattern": 0.0, "sharpness": 1.0}
    # +4 grey levels at one of the 16 sub-pixel phases: 4 - 4/16 above the phases' mean; the mean moves by 1/4
    checkerboard = image.copy()
    checkerboard[1::4, 2::4] += 4
    assert metrics(checkerboard)["phase_pattern"] == pytest.approx(3.75)
    assert metrics(checkerboard)["colour_shift"] == pytest.approx(0.25)
    # noise of 5 grey levels is not a fixed pattern: it averages out over the phases
    noisy = metrics(image + rng.normal(0, 5, image.shape))
    assert noisy["phase_pattern"] < 0.5 and noisy["sharpness"] > 1
    cast = metrics(image + np.array([3.0, 0.0, -2.0]))
    assert cast["colour_shift"] == pytest.approx(3) and cast["phase_pattern"] == pytest.approx(0, abs=1e-9)
    blurred = np.asarray(hr.crop((0, 0, 200, 200)).filter(ImageFilter.GaussianBlur(2)), dtype=np.float64)
    assert metrics(blurred)["sharpness"] < 0.5


def test_blockiness_finds_a_jpeg_grid_carried_into_the_output(data_dir):
    """A heavily compressed JPEG has hard steps every 8 pixels, which an upscaler carries to every 8 x 4 output
    pixels; the image before compression, or the output measured off the grid, has none."""
    hr = Image.open(data_dir / "benchmarks" / "Set14" / "baboon.png").convert("RGB").crop((0, 0, 256, 256))
    encoded = io.BytesIO()
    hr.save(encoded, "JPEG", quality=10)
    blocky = Image.open(encoded).convert("RGB")
    assert blockiness(blocky, 1) > 1.5 and blockiness(hr, 1) < 1.1
    for resample in (Image.Resampling.NEAREST, Image.Resampling.BICUBIC):
        upscaled = blocky.resize((1024, 1024), resample)
        assert abs(blockiness(upscaled, 4) - blockiness(blocky, 1)) < 0.1 * blockiness(blocky, 1)
        assert blockiness(hr.resize((1024, 1024), resample), 4) < 1.1
        assert blockiness(upscaled.crop((12, 12, 1012, 1012)), 4) < 1.0  # the grid falls between the measures


def test_psnr_identical_is_inf_and_noise_is_analytic():
    rng = np.random.default_rng(0)
    image = rng.integers(20, 236, size=(64, 64, 3), dtype=np.uint8)
    assert psnr(image, image) == math.inf
    # +-d on every pixel in RGB: MSE = d^2 -> PSNR = 20 log10(255 / d)
    signs = rng.choice([-1, 1], size=image.shape)
    noisy = (image.astype(int) + 3 * signs).astype(np.uint8)
    assert psnr(noisy, image, crop_border=0, y_channel=False) == pytest.approx(20 * math.log10(255 / 3), abs=1e-9)
    # on Y, a uniform +d shift of R, G and B moves Y by d * 219/255
    shifted = (image.astype(int) + 4).astype(np.uint8)
    expected = 20 * math.log10(255 / (4 * 219 / 255))
    assert psnr(shifted, image, crop_border=4) == pytest.approx(expected, abs=1e-9)


def test_ssim_identical_is_one_constant_is_analytic_and_noise_lowers_it():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    # flat images: the variance terms cancel, SSIM = (2 a b + C1) / (a^2 + b^2 + C1) with a, b the Y values
    a, b = (16 + v * 219 / 255 for v in (100, 140))
    c1 = (0.01 * 255) ** 2
    flat_a, flat_b = np.full((32, 32), 100, np.uint8), np.full((32, 32), 140, np.uint8)
    assert ssim(flat_a, flat_b) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-12)
    noisy = np.clip(image.astype(int) + rng.normal(0, 40, image.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(noisy, image) < 0.97
    assert ssim(noisy, image, y_channel=False) < ssim(noisy, image)  # Y averages the per-channel noise down


def test_grayscale_metrics_equal_rgb_with_equal_channels():
    rng = np.random.default_rng(2)
    a, b = (rng.integers(0, 256, size=(40, 40), dtype=np.uint8) for _ in range(2))
    a3, b3 = np.stack([a] * 3, -1), np.stack([b] * 3, -1)
    assert psnr(a, b) == pytest.approx(psnr(a3, b3))
    assert ssim(a, b) == pytest.approx(ssim(a3, b3))
    assert rgb_to_y(np.array([[255]], np.uint8))[0, 0] == pytest.approx(235.0)


def test_metrics_reject_mismatched_and_float_images():
    with pytest.raises(ValueError, match="differ in size"):
        psnr(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        psnr(np.zeros((20, 20, 3), np.float32), np.zeros((20, 20, 3), np.float32))


@pytest.mark.parametrize(("dataset", "expected"), [("Set5", 28.43), ("Set14", 26.09)])
def test_bicubic_baseline_reproduces_the_literature(data_dir, dataset, expected):
    bench = data_dir / "benchmarks"
    pairs = load_folder(bench / dataset, 4, bench / "LR_x4_matlab_bicubic" / dataset)
    result = evaluate_pairs(pairs, lambda lr: bicubic_upscale(lr, 4), 4)
    assert result["images"] == len(list((bench / dataset).glob("*.png")))
    assert result["psnr"] == pytest.approx(expected, abs=0.02)
    assert 0.6 < result["ssim"] < 0.9


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-x4")
    SRGenerator(num_blocks=1, num_channels=8).save_pretrained(folder)
    return folder


def test_srgan_eval_cli_table_json_and_card(data_dir, tiny_model_dir, tmp_path):
    script = Path(sys.executable).parent / "srgan-eval"
    bench = data_dir / "benchmarks"
    result = subprocess.run(
        [
            str(script),
            "--model",
            str(tiny_model_dir),
            "--data",
            str(bench / "Set5"),
            "--lr-dir",
            str(bench / "LR_x4_matlab_bicubic"),
            "--json",
            str(tmp_path / "results.json"),
            "--save-sr",
            str(tmp_path / "sr"),
            "--update-card",
            "--lpips-weights",
            str(data_dir.parent / "models" / "lpips-alex"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "| bicubic |" in table and f"| {tiny_model_dir.name} |" in table and "Set5" in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["scale"] == 4
    set5 = results["results"]["Set5"]
    assert set(set5) == {"bicubic", tiny_model_dir.name}
    assert set5["bicubic"]["psnr"] == pytest.approx(28.43, abs=0.02)
    expected_keys = {"psnr", "ssim", "lpips", "images", "colour_shift", "phase_pattern", "sharpness"}
    assert set(set5[tiny_model_dir.name]) == expected_keys and set5[tiny_model_dir.name]["images"] == 5
    assert set5["bicubic"]["lpips"] == pytest.approx(0.3398, abs=0.001)  # the weights' reference value
    assert set5["bicubic"]["lpips"] < set5[tiny_model_dir.name]["lpips"]  # an untrained model is worse
    # bicubic's artefacts, as the README's table gives them for Set14: no colour cast or pattern, and blurred
    assert set5["bicubic"]["colour_shift"] < 0.5 and set5["bicubic"]["phase_pattern"] < 0.5
    assert 0.05 < set5["bicubic"]["sharpness"] < 0.5
    assert len(list((tmp_path / "sr" / "Set5" / tiny_model_dir.name).glob("*.png"))) == 5

    card = (tiny_model_dir / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---")[1])
    index = metadata["model-index"][0]
    assert index["name"] == tiny_model_dir.name
    metrics = {m["type"]: m["value"] for m in index["results"][0]["metrics"]}
    assert metrics["psnr"] == pytest.approx(set5[tiny_model_dir.name]["psnr"], abs=1e-4)
    assert index["results"][0]["dataset"]["name"] == "Set5"
    assert "| bicubic |" in card.split("## Evaluation")[1]


def test_card_update_replaces_the_previous_table(tiny_model_dir, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for f in tiny_model_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    first = {"Set5": {"bicubic": {"psnr": 28.0, "ssim": 0.8}, "m": {"psnr": 30.0, "ssim": 0.85}}}
    second = {"Set5": {"bicubic": {"psnr": 28.0, "ssim": 0.8}, "m": {"psnr": 31.5, "ssim": 0.88}}}
    write_results_to_card(folder, first, "m", 4)
    write_results_to_card(folder, second, "m", 4)
    card = (folder / "README.md").read_text()
    assert card.count("## Evaluation") == 1 and "31.50" in card and "30.00" not in card
    assert "## Intended use" in card  # the sections after it survive


def test_card_keeps_clean_and_degraded_results_apart(tiny_model_dir, tmp_path):
    """`srgan-eval --degradation realworld --update-card` adds its own model-index entries (dataset config
    realworld-seed<N>) and table; a later clean update replaces only the clean ones, and the degraded numbers are
    never filed under the clean dataset."""
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    clean = {"Set14": {"bicubic": {"psnr": 26.0, "ssim": 0.70}, "m": {"psnr": 27.5, "ssim": 0.75, "lpips": 0.2}}}
    degraded = {"Set14": {"bicubic": {"psnr": 22.0, "ssim": 0.52}, "m": {"psnr": 22.4, "ssim": 0.54, "lpips": 0.5}}}
    write_results_to_card(folder, clean, "m", 4)
    write_results_to_card(folder, degraded, "m", 4, realworld_seed=0)
    write_results_to_card(folder, {"Set14": {**clean["Set14"], "m": {"psnr": 27.6, "ssim": 0.76}}}, "m", 4)
    card = ModelCard.load(folder / "README.md")
    by_config = {}
    for result in card.data.eval_results:
        by_config.setdefault(result.dataset_config, {})[(result.dataset_name, result.metric_type)] = result.metric_value
    assert by_config == {
        None: {("Set14", "psnr"): 27.6, ("Set14", "ssim"): 0.76},
        "realworld-seed0": {
            ("Set14 (real-world degraded)", "psnr"): 22.4,
            ("Set14 (real-world degraded)", "ssim"): 0.54,
            ("Set14 (real-world degraded)", "lpips"): 0.5,
        },
    }
    evaluation = card.text.split("## Evaluation")[1]
    clean_table, degraded_table = evaluation.split("### Real-world degraded LR (seed 0)")
    assert "### Bicubic LR" in clean_table and "27.60" in clean_table and "27.50" not in clean_table
    assert "--degradation realworld --seed 0" in degraded_table and "22.40 / 0.5400 / 0.5000" in degraded_table
    assert card.text.count("## Evaluation") == 1 and "## Intended use" in card.text


@pytest.fixture(scope="module")
def lpips_alex(data_dir):
    return load_lpips(data_dir.parent / "models" / "lpips-alex")


def bicubic_lpips(data_dir, dataset: str, model) -> float:
    """LPIPS-alex of PIL-bicubic x4 of the benchmarks' MATLAB LR files, as the weights' README computes it."""
    bench = data_dir / "benchmarks"
    pairs = load_folder(bench / dataset, 4, bench / "LR_x4_matlab_bicubic" / dataset)
    return float(np.mean([lpips(bicubic_upscale(pair.lr, 4), pair.hr, model) for pair in pairs]))


@pytest.mark.parametrize(("dataset", "reference"), [("Set5", 0.3398), ("Set14", 0.4386)])
def test_lpips_reproduces_the_reference_values(data_dir, lpips_alex, dataset, reference):
    """The README of the LPIPS-alex weights: bicubic x4, whole RGB image, no border crop; SPSR's published table
    (0.3407 / 0.4393) computed the same way, so our numbers sit beside the published SRGAN and ESRGAN rows."""
    assert bicubic_lpips(data_dir, dataset, lpips_alex) == pytest.approx(reference, abs=0.001)


def test_lpips_reference_check_catches_a_wrong_input_scaling(data_dir):
    """The reference values pin the input convention: [0, 1] images fed without LPIPS's 2x - 1 and scaling layer
    (or fed as 0...255) land outside the 0.001 tolerance."""
    for shift, scale in [(torch.zeros(3), torch.full((3,), 0.5)), (torch.full((3,), -1.0), torch.full((3,), 2 / 255))]:
        wrong = load_lpips(data_dir.parent / "models" / "lpips-alex")
        wrong.shift.copy_(shift.view(1, 3, 1, 1))  # (2x - 1 - shift) / scale: x itself, or x * 255
        wrong.scale.copy_(scale.view(1, 3, 1, 1))
        assert abs(bicubic_lpips(data_dir, "Set5", wrong) - 0.3398) > 0.003


def test_lpips_is_zero_for_identical_images_symmetric_and_grows_with_blur(data_dir, lpips_alex):
    hr = Image.open(data_dir / "benchmarks" / "Set5" / "butterfly.png").convert("RGB")
    assert lpips(hr, hr, lpips_alex) == 0
    blurred = [lpips(hr.filter(ImageFilter.GaussianBlur(radius)), hr, lpips_alex) for radius in (0.5, 1, 2, 4)]
    assert blurred == sorted(blurred) and blurred[0] > 0
    noisy = np.clip(np.asarray(hr, float) + np.random.default_rng(0).normal(0, 8, (256, 256, 3)), 0, 255)
    noisy = noisy.astype(np.uint8)
    assert lpips(noisy, hr, lpips_alex) == pytest.approx(lpips(hr, noisy, lpips_alex), rel=1e-5)
    assert lpips(hr.convert("L"), hr.convert("L"), lpips_alex) == 0  # grayscale is compared as RGB


def test_lpips_weights_load_strictly_and_name_what_is_wrong(data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="lpips_v0.1_alex_lin.safetensors"):
        load_lpips(tmp_path)
    source = data_dir.parent / "models" / "lpips-alex"
    (tmp_path / "alexnet_features.safetensors").write_bytes((source / "alexnet_features.safetensors").read_bytes())
    save_file({"lin0.weight": torch.zeros(1, 64, 1, 1)}, tmp_path / "lpips_v0.1_alex_lin.safetensors")
    with pytest.raises(ValueError, match="lin1.weight"):
        load_lpips(tmp_path)
