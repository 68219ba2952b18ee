"""Real-ESRGAN's second-order degradation model, each step checked against its definition."""

import io
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from srgan_hub.degradations import (
    DegradationStage,
    RealWorldDegradation,
    add_noise,
    bicubic_downsample,
    gaussian_family_kernel,
    jpeg,
    poisson_quantile,
    random_kernels,
    sinc_kernel,
)
from srgan_hub.evaluate import bicubic_upscale, evaluate_pairs, load_folder


def test_gaussian_kernel_has_the_covariance_it_was_drawn_with():
    kernel = gaussian_family_kernel(41, sigma_x=3.0, sigma_y=1.5, angle=math.pi / 6)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    axis = torch.arange(41, dtype=torch.float32) - 20
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    second_moments = torch.tensor(
        [[(kernel * x * x).sum(), (kernel * x * y).sum()], [(kernel * x * y).sum(), (kernel * y * y).sum()]]
    )
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    rotation = torch.tensor([[c, -s], [s, c]])
    expected = rotation @ torch.diag(torch.tensor([9.0, 2.25])) @ rotation.T
    assert torch.allclose(second_moments, expected, atol=1e-3)


def test_generalized_and_plateau_kernels_follow_their_formulas():
    iso = gaussian_family_kernel(15, 2.0, 2.0, 0.0)
    assert torch.allclose(gaussian_family_kernel(15, 2.0, 2.0, 0.0, beta=1.0), iso)
    axis = torch.arange(15, dtype=torch.float32) - 7
    d = (axis[None, :] ** 2 + axis[:, None] ** 2) / 4.0
    for beta, plateau, shape in [(2.0, False, torch.exp(-0.5 * d**2.0)), (1.5, True, 1 / (1 + d**1.5))]:
        kernel = gaussian_family_kernel(15, 2.0, 2.0, 0.0, beta=beta, plateau=plateau)
        assert torch.allclose(kernel, shape / shape.sum(), atol=1e-6)


def test_sinc_kernel_passes_below_its_cutoff_and_stops_above():
    cutoff = math.pi / 2  # a quarter of the sampling frequency
    kernel = sinc_kernel(cutoff, 41)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    response = torch.fft.fftshift(torch.fft.fft2(kernel.double(), s=(256, 256))).abs()
    frequency = torch.fft.fftshift(torch.fft.fftfreq(256)) * 2 * math.pi
    radius = torch.hypot(frequency[None, :], frequency[:, None])
    assert response[radius < 0.7 * cutoff].min() > 0.85
    assert response[radius > 1.3 * cutoff].max() < 0.15


def test_random_kernels_are_normalised_and_padded_to_one_size():
    generator = torch.Generator().manual_seed(0)
    kernels = random_kernels(64, (7, 9, 21), DegradationStage(), generator)
    assert kernels.shape == (64, 21, 21)
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(64), atol=1e-5)


def test_gaussian_noise_has_its_sigma_and_gray_noise_is_the_same_in_every_channel():
    order = DegradationStage(gaussian_noise_prob=1.0, noise_sigma=(10.0, 10.0), gray_noise_prob=0.0)
    flat = torch.full((2, 3, 128, 128), 0.5)
    noise = add_noise(flat, order, torch.Generator().manual_seed(0)) - flat
    assert noise.std().item() * 255 == pytest.approx(10.0, rel=0.03)
    gray = add_noise(flat, DegradationStage(gaussian_noise_prob=1.0, gray_noise_prob=1.0), torch.Generator())
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])


def test_poisson_noise_grows_with_the_signal():
    order = DegradationStage(gaussian_noise_prob=0.0, poisson_scale=(1.0, 1.0), gray_noise_prob=0.0)
    dark, bright = torch.full((1, 3, 128, 128), 16 / 255), torch.full((1, 3, 128, 128), 196 / 255)
    generator = torch.Generator().manual_seed(0)
    dark_std, bright_std = ((add_noise(x, order, generator) - x).std().item() * 255 for x in (dark, bright))
    assert dark_std == pytest.approx(4.0, rel=0.1) and bright_std == pytest.approx(14.0, rel=0.1)  # sqrt(counts)


def test_poisson_quantiles_follow_the_poisson_law_and_gray_shot_noise_is_gray():
    uniform = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    for rate in (0.0, 0.5, 4.0, 196.0):
        samples = poisson_quantile(torch.full_like(uniform, rate), uniform)
        assert torch.equal(samples, samples.round()) and samples.min() >= 0
        assert samples.mean().item() == pytest.approx(rate, abs=0.01 + 0.01 * rate)
        assert samples.var().item() == pytest.approx(rate, abs=0.01 + 0.02 * rate)
    samples = poisson_quantile(torch.full_like(uniform, 4.0), uniform)
    for k in range(10):  # the probability mass function, count by count
        assert (samples == k).float().mean().item() == pytest.approx(math.exp(-4) * 4**k / math.factorial(k), abs=3e-3)
    order = DegradationStage(gaussian_noise_prob=0.0, gray_noise_prob=1.0, poisson_scale=(1.0, 1.0))  # no clipping
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 0.2 + 0.4
    noise = add_noise(image, order, torch.Generator().manual_seed(2)) - image
    assert noise.abs().mean() > 1 / 255
    assert (noise - noise[:, :1]).abs().max() < 1e-6  # the same in every channel, up to float rounding


def test_jpeg_matches_a_real_encoder(data_dir):
    image = np.asarray(Image.open(data_dir / "benchmarks" / "Set5" / "butterfly.png").convert("RGB"))[64:192, 64:192]
    encoded = io.BytesIO()
    Image.fromarray(image).save(encoded, "JPEG", quality=50)
    pillow = np.asarray(Image.open(encoded), dtype=np.float64)
    ours = jpeg(torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255, torch.tensor([50.0]))
    ours = ours[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - pillow).mean() < 3.0  # the same codec, up to rounding and chroma filtering
    assert np.abs(image - pillow).mean() > 3 * np.abs(ours - pillow).mean()  # JPEG changed the image far more


def test_pipeline_is_seeded_sized_and_8bit():
    hr = torch.rand(4, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    degrade = RealWorldDegradation()
    first = degrade(hr, torch.Generator().manual_seed(7))
    assert first.shape == (4, 3, 24, 24) and 0 <= first.min() and first.max() <= 1
    assert torch.allclose(first * 255, (first * 255).round(), atol=1e-4)
    assert torch.equal(first, degrade(hr, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, degrade(hr, torch.Generator().manual_seed(8)))


def test_clean_share_gets_exactly_the_bicubic_lr():
    """clean_prob: the chosen images' LR is the 8-bit MATLAB-bicubic one, the others are still degraded."""
    hr = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    bicubic = bicubic_downsample(hr, 4).mul(255).round().div(255)
    mixed = RealWorldDegradation(clean_prob=0.5)(hr, torch.Generator().manual_seed(3))
    clean = (mixed - bicubic).flatten(1).abs().amax(1) < 1e-6
    assert 16 <= int(clean.sum()) <= 48  # about half, by a seeded draw
    assert torch.equal(RealWorldDegradation(clean_prob=1.0)(hr, torch.Generator().manual_seed(3)), bicubic)
    assert (
        not (RealWorldDegradation()(hr, torch.Generator().manual_seed(3)) - bicubic)
        .flatten(1)
        .abs()
        .amax(1)
        .lt(1e-6)
        .any()
    )


def test_realworld_benchmark_pairs_are_fixed_by_the_seed(data_dir):
    set5 = data_dir / "benchmarks" / "Set5"
    first, again, other = (load_folder(set5, 4, realworld_seed=seed) for seed in (1, 1, 2))
    clean = load_folder(set5, 4)
    for a, b, c, d in zip(first, again, other, clean, strict=True):
        assert a.lr.size == d.lr.size and a.hr.size == d.hr.size
        assert a.lr.tobytes() == b.lr.tobytes() and a.lr.tobytes() != c.lr.tobytes() != d.lr.tobytes()
    bicubic = evaluate_pairs(clean, lambda lr: bicubic_upscale(lr, 4), 4)["psnr"]
    degraded = evaluate_pairs(first, lambda lr: bicubic_upscale(lr, 4), 4)["psnr"]
    assert degraded < bicubic - 1  # blur, noise and JPEG cost bicubic more than a dB


DEGRADE_SET14 = """
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from srgan_hub.evaluate import load_folder
pairs = load_folder(sys.argv[2], 4, realworld_seed=0)
np.savez(sys.argv[3], **{pair.name: np.asarray(pair.lr) for pair in pairs})
"""


def test_realworld_benchmark_pairs_are_the_same_whatever_the_thread_count(data_dir, tmp_path):
    """A seeded degradation must not depend on the host: the thread count changes how float sums are rounded, which
    may flip one 8-bit level here and there, but must not change the random draws (Set14's pepper once came out
    14 grey levels apart on average with 1 and 2 threads)."""
    lrs = []
    for threads in (1, 3):
        out = tmp_path / f"{threads}.npz"
        command = [sys.executable, "-c", DEGRADE_SET14, str(threads), str(data_dir / "benchmarks" / "Set14"), str(out)]
        subprocess.run(command, check=True, capture_output=True)
        lrs.append(np.load(out))
    assert sorted(lrs[0]) == sorted(lrs[1]) and len(lrs[0]) == 14
    for name in lrs[0]:
        difference = np.abs(lrs[0][name].astype(int) - lrs[1][name])
        assert difference.max() <= 2 and (difference > 0).mean() < 0.005, name


@pytest.mark.slow
def test_training_on_realworld_degradations(data_dir, tmp_path):
    """Both stages take --degradation realworld: LR made on the training device, a degraded validation set, and
    the degradations' generator saved with the checkpoint."""
    from test_training import TINY, launch

    images = data_dir / "train" / "T91"
    common = ["--dataset", str(images), "--degradation", "realworld", "--max-steps", "2", "--checkpoint-every", "2"]
    common += ["--val-dir", str(data_dir / "benchmarks" / "Set5"), "--val-every", "2", *TINY]
    log = launch("--stage", "srresnet", "--output-dir", str(tmp_path / "srresnet"), *common)
    assert "step 2: validation PSNR" in log
    checkpoint = tmp_path / "srresnet" / "checkpoints" / "checkpoint-2"
    # the lr schedule, the train state and, here, the degradations' generator
    assert len(list(checkpoint.glob("custom_checkpoint_*.pkl"))) == 3
    log = launch(
        "--stage", "srgan", "--init-from", str(tmp_path / "srresnet"), "--output-dir", str(tmp_path / "gan"), *common
    )
    assert "x4 realworld degradation" in (tmp_path / "gan" / "README.md").read_text()
