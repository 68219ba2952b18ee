"""train/train.py in real processes: DDP through `accelerate launch`, resume, crash safety, bf16, VGG loss, and
the streamed data pipeline's sharding (issue: training)."""

import copy
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image
from safetensors.torch import save_file

from srgan_hub import SRDiscriminator, SRGenerator
from srgan_hub.data import RandomCropStream, load_image_stream, make_dataloader, rank_stream
from srgan_hub.degradations import TrainingDegradation
from srgan_hub.evaluate import Pair
from srgan_hub.losses import (
    CAFFE,
    REALESRGAN_LAYERS,
    TORCHVISION,
    VGG_RESCALE,
    ContentLoss,
    VGG19Features,
    discriminator_loss,
    generator_adversarial_loss,
    load_vgg19,
    phase_mean_error,
    pixel_mse,
    read_vgg19_weights,
)
from srgan_hub.models import VGGFeatureDiscriminator
from srgan_hub.training import freeze_batchnorm, roll_randomly, roll_together, validate

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--num-blocks",
    "1",
    "--num-channels",
    "8",
    "--batch-size",
    "2",
    "--crop-size",
    "32",
    "--num-workers",
    "1",
    "--crops-per-image",
    "2",
    "--shuffle-buffer",
    "4",
    "--log-every",
    "1",
]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(tmp_path_factory, data_dir) -> Path:
    """Eight small training images cut from BSDS200 (plus one too small to crop)."""
    folder = tmp_path_factory.mktemp("images")
    for i, path in enumerate(sorted((data_dir / "train" / "BSDS200").glob("*.png"))[:8]):
        Image.open(path).crop((0, 0, 64, 48)).save(folder / f"img{i}.png")
    Image.new("RGB", (20, 20)).save(folder / "tiny.png")
    return folder


def launch(*args: str, processes: int = 1, mixed_precision: str = "no", timeout: int = 300, background: bool = False):
    """`accelerate launch` as a user runs it; two processes on CPU use the flags that give real gloo DDP."""
    command = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--num_machines",
        "1",
        "--mixed_precision",
        mixed_precision,
        "--dynamo_backend",
        "no",
        "--num_processes",
        str(processes),
    ]
    command += ["--multi_gpu"] if processes > 1 else ["--cpu"]
    command += [str(REPO / "train" / "train.py"), *args]
    env = os.environ | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if background:
        return subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout + result.stderr


def train_args(stage: str, images: Path, output_dir: Path, *extra: str) -> list[str]:
    return ["--stage", stage, "--dataset", str(images), "--output-dir", str(output_dir), *extra, *TINY]


def adam_steps(checkpoint: Path, name: str = "optimizer.bin") -> int:
    state = torch.load(checkpoint / name, map_location="cpu", weights_only=True)
    return int(next(iter(state["state"].values()))["step"])


@pytest.fixture(scope="module")
def srresnet_run(images, tmp_path_factory, data_dir) -> tuple[Path, str]:
    """Two real DDP processes in bf16 autocast (bf16 runs on any CPU, only slower where it is emulated)."""
    out = tmp_path_factory.mktemp("srresnet")
    log = launch(
        *train_args(
            "srresnet",
            images,
            out,
            "--max-steps",
            "4",
            "--checkpoint-every",
            "2",
            "--val-dir",
            str(data_dir / "benchmarks" / "Set5"),
            "--val-every",
            "4",
        ),
        processes=2,
        mixed_precision="bf16",
    )
    return out, log


def test_two_process_ddp_srresnet_in_bf16(srresnet_run):
    out, log = srresnet_run
    assert "generator weights identical on all 2 rank(s)" in log
    checkpoint = out / "checkpoints" / "checkpoint-4"
    assert (checkpoint / "random_states_0.pkl").is_file() and (checkpoint / "random_states_1.pkl").is_file()
    assert adam_steps(checkpoint) == 4
    assert "validation PSNR" in log and "raw generator" not in log  # no EMA, so one generator to validate
    assert re.search(r"sharpness \d\.\d+, sub-pixel pattern \d+\.\d+, colour shift \d+\.\d+", log)
    # autocast computes in bf16, but the weights and Adam's moments stay fp32
    moments = torch.load(checkpoint / "optimizer.bin", map_location="cpu", weights_only=True)["state"]
    assert {m["exp_avg"].dtype for m in moments.values()} == {torch.float32}
    assert {t.dtype for t in SRGenerator.from_pretrained(out).state_dict().values()} <= {torch.float32, torch.int64}


def test_exported_folder_loads_strictly(srresnet_run):
    out, _ = srresnet_run
    model = SRGenerator.from_pretrained(out)
    assert model.num_blocks == 1 and model.num_channels == 8
    card = (out / "README.md").read_text()
    assert "Steps: 4 updates of batch 2 x 2 process(es)" in card
    assert "mixed precision `bf16`" in card
    assert "at step 4: PSNR" in card
    skipped = re.search(r"(\d+) smaller than a crop, 0 corrupt", card)
    assert skipped and int(skipped.group(1)) >= 1  # tiny.png, counted across both ranks


def test_resume_continues_with_the_saved_optimizer_state(srresnet_run, images, tmp_path):
    out, _ = srresnet_run
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(out / "checkpoints" / "checkpoint-4"), str(resumed / "checkpoints")], check=True)
    (resumed / "README.md").write_text((out / "README.md").read_text())  # the card an earlier export left
    log = launch(
        *train_args("srresnet", images, resumed, "--max-steps", "6", "--checkpoint-every", "2", "--resume", "latest"),
        processes=2,
        mixed_precision="bf16",
    )
    assert "at step 4" in log
    assert adam_steps(resumed / "checkpoints" / "checkpoint-6") == 6  # Adam's moments continued, not restarted
    assert not (resumed / "checkpoints" / "checkpoint-2").exists()
    assert "Steps: 6 updates" in (resumed / "README.md").read_text()  # the card describes this run, not the last


@pytest.fixture(scope="module")
def vgg_weights(data_dir) -> Path:
    path = data_dir.parent / "models" / "vgg19" / "vgg19_imagenet_conv.safetensors"
    if not path.is_file():
        pytest.fail(f"VGG19 weights missing: {path}")
    return path


@pytest.mark.parametrize("discriminator", ["paper", "vgg"])
def test_two_process_srgan_vgg54_in_bf16(srresnet_run, images, tmp_path, data_dir, vgg_weights, discriminator):
    """The paper's SRGAN-VGG54 stage with the real VGG19, in two DDP processes under bf16 autocast (with the phase
    mean term, which is not in the paper), with the paper's discriminator or heads on the VGG features; validation
    with LPIPS-alex."""
    out, _ = srresnet_run
    log = launch(
        *train_args(
            "srgan",
            images,
            tmp_path,
            "--init-from",
            str(out),
            "--max-steps",
            "3",
            "--checkpoint-every",
            "3",
            "--content-loss",
            "vgg54",
            "--vgg-weights",
            str(vgg_weights),
            "--phase-weight",
            "1e4",
            "--d-random-shift",
            "--val-dir",
            str(data_dir / "benchmarks" / "Set5"),
            "--val-every",
            "3",
            "--lpips-weights",
            str(data_dir.parent / "models" / "lpips-alex"),
            "--discriminator",
            discriminator,
        ),
        processes=2,
        mixed_precision="bf16",
    )
    assert "generator weights identical on all 2 rank(s)" in log
    # both the exported EMA generator and the raw one it averages are validated
    assert re.search(r"step 3: validation PSNR \d+\.\d\d dB, SSIM \d\.\d{4}, LPIPS-alex 0\.\d{4}", log)
    assert re.search(r"step 3: raw generator validation PSNR \d+\.\d\d dB", log)
    assert re.search(r"D\(real\)=\d\.\d\d, D\(fake\)=\d\.\d\d", log)  # GAN health on the progress bar
    start, trained = SRGenerator.from_pretrained(out).state_dict(), SRGenerator.from_pretrained(tmp_path).state_dict()
    assert trained.keys() == start.keys()  # the EMA generator, exported
    assert not torch.equal(trained["body.0.body.0.weight"], start["body.0.body.0.weight"])  # G learned
    if discriminator == "paper":
        assert SRDiscriminator.from_pretrained(tmp_path / "discriminator").num_channels == 64
    else:  # strictly loaded: heads on relu2_2, relu3_4, relu4_4 and relu5_4
        assert VGGFeatureDiscriminator.from_pretrained(tmp_path / "discriminator").taps == (8, 17, 26, 35)
    checkpoint = tmp_path / "checkpoints" / "checkpoint-3"
    assert adam_steps(checkpoint) == adam_steps(checkpoint, "optimizer_1.bin") == 3  # G and D stepped every step
    card = (tmp_path / "README.md").read_text()
    assert "content loss `vgg54` + 10000 x sub-pixel phase mean" in card
    assert "SR and HR rolled by a random offset for D and the VGG features" in card  # --d-random-shift
    # the GAN generator records the PSNR generator it was fine-tuned from, for upscale(detail=...)
    assert SRGenerator.from_pretrained(tmp_path).base_model == str(out)
    assert ModelCard.load(tmp_path / "README.md").data.base_model == str(out)


def test_kill_during_training_leaves_the_last_checkpoint_loadable(images, tmp_path):
    process = launch(
        *train_args("srresnet", images, tmp_path, "--max-steps", "100000", "--checkpoint-every", "2"),
        background=True,
    )
    checkpoints = tmp_path / "checkpoints"

    def saved_steps() -> list[int]:
        names = [p.name for p in checkpoints.glob("checkpoint-*") if not p.name.endswith(".partial")]
        return sorted(int(name.split("-")[1]) for name in names)

    deadline = time.time() + 240
    while time.time() < deadline and not any(step >= 4 for step in saved_steps()):  # rotation deletes old ones
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert saved_steps(), "no checkpoint was written before the kill"
    last = saved_steps()[-1]
    log = launch(
        *train_args(
            "srresnet", images, tmp_path, "--max-steps", str(last + 1), "--checkpoint-every", "2", "--resume", "latest"
        ),
    )
    assert f"resumed from {checkpoints / f'checkpoint-{last}'}" in log


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(images, tmp_path):
    """A scheduler's preemption notice: SIGTERM to the training process and its DataLoader workers."""
    import psutil

    process = launch(
        *train_args("srresnet", images, tmp_path, "--max-steps", "100000", "--checkpoint-every", "1000"),
        background=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list((tmp_path / "tensorboard").rglob("events*")):
        time.sleep(0.5)
    time.sleep(3)
    for child in psutil.Process(process.pid).children(recursive=True):
        child.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    assert "stop requested" in output
    saved = list((tmp_path / "checkpoints").glob("checkpoint-*"))
    assert len(saved) == 1 and int(saved[0].name.split("-")[1]) > 0
    assert "stopped early" in (tmp_path / "README.md").read_text()  # a usable model, honestly labelled
    assert SRGenerator.from_pretrained(tmp_path).num_channels == 8


def test_vgg_weights_say_their_input_convention(tmp_path, vgg_weights):
    """The Caffe file declares its convention in its metadata; torchvision's state dict is known by its keys;
    a file that says neither is refused rather than guessed."""
    state, convention = read_vgg19_weights(vgg_weights)
    assert convention == CAFFE and {"features.0.weight", "features.34.bias"} <= set(state)
    torchvision_like = {k: v.contiguous() for k, v in VGG19Features(last_layer=35).state_dict().items()}
    torchvision_like |= {f"classifier.{i}.weight": torch.zeros(2, 2) for i in (0, 3, 6)}
    torch.save(torchvision_like, tmp_path / "vgg19.pth")
    assert read_vgg19_weights(tmp_path / "vgg19.pth")[1] == TORCHVISION
    bare = {k: v for k, v in torchvision_like.items() if k.startswith("features.")}
    save_file(bare, tmp_path / "bare.safetensors")
    with pytest.raises(ValueError, match="does not say which input convention"):
        read_vgg19_weights(tmp_path / "bare.safetensors")
    save_file({"weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a VGG19 state dict"):
        read_vgg19_weights(tmp_path / "other.safetensors")
    # the loaded network is frozen, in eval mode, and feeds the Caffe input (0..255 minus the mean) to conv1_1
    vgg = load_vgg19(vgg_weights, last_layer=8)
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())
    grey = torch.full((1, 3, 4, 4), 0.5)
    assert torch.allclose(
        vgg.normalise(grey)[0, :, 0, 0], torch.tensor([127.5 - 123.68, 127.5 - 116.779, 127.5 - 103.939])
    )


def test_two_ranks_two_workers_see_disjoint_data_covering_the_set(data_dir):
    folder = data_dir / "train" / "T91"
    expected = {str(p) for p in folder.glob("*.bmp")}
    seen = []
    for rank in range(2):
        stream = rank_stream(str(folder), rank=rank, world_size=2, num_workers=2)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
        seen.append([example["image"]["path"] for example in loader])
    assert set(seen[0]).isdisjoint(seen[1])
    assert len(seen[0]) + len(seen[1]) == len(expected)  # no file twice
    assert set(seen[0]) | set(seen[1]) == expected  # every file once
    assert abs(len(seen[0]) - len(seen[1])) <= 12  # balanced: whole shards, not one rank reading all


def test_streaming_reads_parquet_shards(images, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(images.glob("img*.png"))
    for i in range(2):
        table = pa.table({"photo": [{"bytes": f.read_bytes(), "path": f.name} for f in files[i::2]]})
        pq.write_table(table, tmp_path / f"part-{i}.parquet")
    stream = load_image_stream(str(tmp_path), image_column="photo")
    assert sorted(example["image"]["path"] for example in stream) == sorted(f.name for f in files)


def test_corrupt_and_small_images_are_skipped_and_counted(images, tmp_path):
    for f in images.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    crops = RandomCropStream(
        load_image_stream(str(tmp_path), num_shards=4), crop_size=32, crops_per_image=1, shuffle_buffer=2
    )
    items = list(crops)
    assert len(items) == 8  # one crop from each good image
    assert sum(i["corrupt"] for i in items) == 1 and sum(i["too_small"] for i in items) == 1
    assert all(i["hr"].shape == (3, 32, 32) and i["hr"].dtype == torch.uint8 for i in items)


def test_training_degradation_makes_8bit_matlab_bicubic_lr_of_the_batch(images):
    loader = make_dataloader(str(images), batch_size=4, crop_size=32, scale=4, num_workers=0, crops_per_image=2)
    hr = next(iter(loader))["hr"]
    lr = TrainingDegradation("bicubic", 4, "cpu", seed=0)(hr)
    assert hr.shape == (4, 3, 32, 32) and lr.shape == (4, 3, 8, 8)
    levels = lr * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # quantised like real LR files
    from srgan_hub.degradations import imresize

    matlab = imresize(np.round(hr[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), 0.25).astype(float)
    assert np.abs(matlab - np.round(levels[0].permute(1, 2, 0).numpy())).max() <= 1
    gaussian = TrainingDegradation("gaussian", 4, "cpu", seed=0, sigma=1.5)(hr)
    assert gaussian.shape == lr.shape and not torch.equal(gaussian, lr)


def test_training_degradation_resumes_its_random_stream(images):
    """A checkpointed real-world degradation continues where it stopped: the next batch is degraded as an
    uninterrupted run would degrade it."""
    hr = next(iter(make_dataloader(str(images), batch_size=4, crop_size=32, scale=4, num_workers=0)))["hr"]
    running = TrainingDegradation("realworld", 4, "cpu", seed=5, clean_prob=0.3)
    running(hr)
    saved = running.state_dict()
    expected = running(hr)
    resumed = TrainingDegradation("realworld", 4, "cpu", seed=99, clean_prob=0.3)
    resumed.load_state_dict(saved)
    assert torch.equal(resumed(hr), expected)
    with pytest.raises(ValueError, match="bicubic, gaussian, realworld"):
        TrainingDegradation("box", 4, "cpu", seed=0)


def test_stream_is_reproducible_per_epoch(images):
    def first_batch(epoch):
        loader = make_dataloader(str(images), batch_size=4, crop_size=32, scale=4, num_workers=0, seed=3)
        loader.dataset.set_epoch(epoch)
        return next(iter(loader))["hr"]

    assert torch.equal(first_batch(0), first_batch(0))  # a resumed run replays the same stream
    assert not torch.equal(first_batch(0), first_batch(1))  # and each epoch is reshuffled


def test_streaming_reads_webdataset_shards(images, tmp_path):
    import tarfile

    files = sorted(images.glob("img*.png"))
    for i in range(2):
        with tarfile.open(tmp_path / f"shard-{i}.tar", "w") as tar:
            for f in files[i::2]:
                tar.add(f, arcname=f"{f.stem}.png")
    stream = load_image_stream(str(tmp_path), image_column="png")
    decoded = [RandomCropStream(stream, crop_size=32, crops_per_image=1, shuffle_buffer=1)]
    assert len(list(decoded[0])) == len(files)


def load_train_script():
    spec = importlib.util.spec_from_file_location("train_script", REPO / "train" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_roll_spreads_the_discriminators_gradient_over_the_subpixel_phases():
    """Why --d-random-shift exists: D's strided convolutions give its input gradient a pattern that repeats on G's
    4x4 sub-pixel grid, the push that teaches G a checkerboard. One random roll per step evens it out."""
    torch.manual_seed(0)
    discriminator = SRDiscriminator(num_channels=8, dense_features=16)

    def gradient_per_phase(roll: bool) -> torch.Tensor:
        total = torch.zeros(4, 4)
        for _ in range(64):
            images = torch.rand(4, 3, 32, 32, requires_grad=True)
            discriminator(roll_randomly(images) if roll else images).sum().backward()
            total += images.grad.abs().mean(dim=(0, 1)).reshape(8, 4, 8, 4).mean(dim=(0, 2))
        return total / total.mean()

    unrolled_spread = gradient_per_phase(roll=False).std()
    assert unrolled_spread > 0.05
    assert gradient_per_phase(roll=True).std() < 0.5 * unrolled_spread
    # HR and SR in one batch move together: D cannot tell them apart by the roll
    batch = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    batch[1] = batch[0]
    rolled = roll_randomly(batch)
    assert torch.equal(rolled[0], rolled[1])
    assert torch.equal(rolled.flatten().sort().values, batch.flatten().sort().values)  # moved, nothing lost


def test_sr_and_hr_are_rolled_together_before_their_vgg_features():
    """With --d-random-shift the VGG features (of the content loss and a VGG-feature D) are taken of SR and HR
    rolled by one random offset below 16 px: the two stay aligned pixel for pixel, nothing is lost, and the offset
    changes from step to step."""
    torch.manual_seed(0)
    sr = torch.rand(2, 3, 32, 32)
    offsets = set()
    for _ in range(8):
        rolled_sr, rolled_hr = roll_together(sr, sr + 1)
        assert torch.equal(rolled_hr, rolled_sr + 1)  # one offset for both
        assert torch.equal(rolled_sr.flatten().sort().values, sr.flatten().sort().values)  # moved, nothing lost
        offsets.add(
            next((dy, dx) for dy in range(16) for dx in range(16) if torch.equal(sr.roll((dy, dx), (2, 3)), rolled_sr))
        )
    assert len(offsets) > 1


def test_vgg_loss_without_weights_names_the_option(capsys):
    with pytest.raises(SystemExit):
        load_train_script().parse_args(
            ["--stage", "srgan", "--init-from", "x", "--dataset", "x", "--output-dir", "y", "--content-loss", "vgg54"]
        )
    assert "--vgg-weights" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--vgg-weights"):
        ContentLoss("vgg22")


def test_phase_mean_error_sees_a_fixed_pattern_or_a_colour_cast_not_texture():
    """The term that holds a VGG GAN's sub-pixel pattern and colour: one sub-pixel phase 0.01 too bright, or a red
    cast of 0.01, costs its exact squared mean at any image size; zero-mean texture costs only its sampling noise,
    which falls with the number of pixels per phase in the batch. Only the crops' interior counts: a pattern in the
    outer two LR pixels (where the generator meets the crop's edge) costs nothing."""
    generator = torch.Generator().manual_seed(0)
    channels_times_phases, margin = 3 * 16, 8
    for side in (96, 384):
        hr = torch.rand(4, 3, side, side, generator=generator)
        pattern, cast, edge_only = hr.clone(), hr.clone(), hr.clone()
        pattern[:, :, 1::4, 2::4] += 0.01  # one of the 16 phases, all channels
        cast[:, 0] += 0.01
        edge_only[:, :, 1:margin:4, 2::4] += 0.5  # the same phase, in the top edge only
        edge_only[:, :, -margin + 1 :: 4, 2:margin:4] -= 0.5  # and in the bottom-left corner
        assert phase_mean_error(pattern, hr, 4) == pytest.approx(3 * 0.02**2 / channels_times_phases, rel=1e-3)
        assert phase_mean_error(cast, hr, 4) == pytest.approx(16 * 0.02**2 / channels_times_phases, rel=1e-3)
        assert phase_mean_error(edge_only, hr, 4) == 0
        texture = hr + 0.05 * torch.randn(hr.shape, generator=generator)  # 5 times the pattern's amplitude
        sampling_noise = (2 * 0.05) ** 2 / (4 * ((side - 2 * margin) // 4) ** 2)  # of a mean over one interior phase
        assert phase_mean_error(texture, hr, 4) == pytest.approx(sampling_noise, rel=0.5)  # a mean of 48 squares
    assert phase_mean_error(texture, hr, 4) < 0.1 * phase_mean_error(pattern, hr, 4)  # at 384 px
    with pytest.raises(ValueError, match="no interior"):
        phase_mean_error(hr[..., :16, :16], hr[..., :16, :16], 4)
    # in the content loss, with its weight, on top of the pixel MSE
    loss = ContentLoss("mse", phase_weight=100.0, scale=4)
    assert loss(cast, hr).item() == pytest.approx((pixel_mse(cast, hr) + 100 * phase_mean_error(cast, hr, 4)).item())


def test_realesrgan_loss_is_the_weighted_l1_of_five_features_before_their_relus(vgg_weights):
    """Real-ESRGAN's perceptual loss, checked against its definition: each tap computed by a VGG cut right after
    that conv (so before its ReLU, negative half kept), L1 of SR and HR features x 1/12.75, weighted 0.1, 0.1, 1,
    1, 1. Zero for SR = HR; gradients reach SR."""
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 48, 48, generator=generator)
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=generator)).clamp(0, 1).requires_grad_()
    expected = 0.0
    with torch.no_grad():
        for index, weight in REALESRGAN_LAYERS.items():
            cut = load_vgg19(vgg_weights, index)
            features_sr, features_hr = cut(sr), cut(hr)
            assert features_hr.min() < 0  # before the ReLU
            expected += weight * (features_sr - features_hr).abs().mean().item() * VGG_RESCALE
    assert list(REALESRGAN_LAYERS.values()) == [0.1, 0.1, 1.0, 1.0, 1.0]
    loss = ContentLoss("realesrgan", vgg_weights=vgg_weights)
    value = loss(sr, hr)
    assert value.item() == pytest.approx(expected, rel=1e-4)
    value.backward()
    assert sr.grad.abs().sum() > 0
    assert loss(hr, hr).item() == 0
    with pytest.raises(ValueError, match="--vgg-weights"):
        ContentLoss("realesrgan")


def test_lr_drops_tenfold_at_the_decay_step():
    args = load_train_script().parse_args(
        ["--stage", "srgan", "--init-from", "x", "--dataset", "x", "--output-dir", "y", "--max-steps", "10"]
    )
    optimizer, scheduler = load_train_script().adam(torch.nn.Linear(2, 2), 1e-4, args)
    rates = []
    for _ in range(10):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[:5] == [1e-4] * 5 and rates[5:] == pytest.approx([1e-5] * 5)  # paper: the last half at 1e-5


def test_loader_workers_survive_a_stop_signal_that_arrives_while_they_start(images):
    """SIGTERM to the process group the moment an epoch's workers are forked, before they reach worker_init_fn."""
    loader = make_dataloader(str(images), batch_size=2, crop_size=32, scale=4, num_workers=2, crops_per_image=1)
    for _ in range(3):  # three epochs, three sets of fresh workers
        batches = iter(loader)
        for worker in batches._workers:
            os.kill(worker.pid, signal.SIGTERM)
        assert len(list(batches)) >= 1  # a worker killed by the signal would raise here
        assert all(worker.exitcode == 0 for worker in batches._workers)


def test_one_verdict_of_d_trains_both_players_as_two_verdicts_did():
    """train.py judges HR and SR with one forward of D. G's update takes the gradient of the adversarial loss for
    G's weights; D's update takes the gradient of D's loss for D's weights only, and that is the gradient of the
    paper's separate D step on a detached SR, with G's gradients untouched."""
    torch.manual_seed(0)
    generator, discriminator = SRGenerator(num_blocks=2).train(), SRDiscriminator(8, 16).train()
    separate = SRDiscriminator(8, 16).train()
    separate.load_state_dict(discriminator.state_dict())
    lr, hr = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 32, 32)
    sr = generator(lr)
    real, fake = discriminator(torch.cat([hr, sr])).chunk(2)
    generator_adversarial_loss(fake).backward(inputs=list(generator.parameters()), retain_graph=True)
    g_gradients = [p.grad.clone() for p in generator.parameters()]
    discriminator_loss(real, fake).backward(inputs=list(discriminator.parameters()))
    assert all(torch.equal(p.grad, g) for p, g in zip(generator.parameters(), g_gradients, strict=True))

    real, fake = separate(torch.cat([hr, sr.detach()])).chunk(2)
    discriminator_loss(real, fake).backward()
    for shared, alone in zip(discriminator.parameters(), separate.parameters(), strict=True):
        torch.testing.assert_close(shared.grad, alone.grad, rtol=1e-5, atol=1e-7)


def test_frozen_batchnorm_trains_the_generator_users_get_and_stays_frozen_through_validation():
    """--freeze-batchnorm: in training mode the generator normalises by its running statistics (its output is
    the eval-mode output, and a batch does not move them), its BN scale and shift still get gradients, and
    validation, which switches to eval mode and back, leaves the BN layers frozen."""
    torch.manual_seed(0)
    generator = freeze_batchnorm(SRGenerator(num_blocks=2, num_channels=8).train())
    before = {k: v.clone() for k, v in generator.state_dict().items() if "running" in k}
    lr = torch.rand(4, 3, 12, 12) * 0.5 + 0.5  # statistics far from the running ones
    sr = generator(lr)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items() if "running" in k)
    with torch.no_grad():
        assert torch.allclose(sr, copy.deepcopy(generator).eval()(lr), atol=1e-6)
    sr.mean().backward()
    assert all(m.weight.grad is not None for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d))

    hr = Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))
    validate(generator, [Pair("noise", hr.resize((8, 8), Image.Resampling.BICUBIC), hr)], 4, "cpu")
    batchnorms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert generator.training and batchnorms and not any(m.training for m in batchnorms)
