"""What `train/train.py` needs around its loop: the resumable train state, the batch stream, checkpoints,
validation, GAN health, and the export of a Hub-ready model folder.

Kept out of the script so that the loop there reads like the paper's algorithm, and so that tests import these
pieces like any other module.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from huggingface_hub import ModelCard
from PIL import Image

from srgan_hub.evaluate import Pair, bicubic_upscale, evaluate_pairs
from srgan_hub.models import SRDiscriminator, SRGenerator, VGGFeatureDiscriminator

logger = logging.getLogger("train")


class TrainState:
    """What `save_state` must restore beyond models and optimizers: where we are in training and in the data."""

    def __init__(self):
        self.step, self.epoch, self.batches_in_epoch = 0, 0, 0
        self.too_small, self.corrupt = 0, 0

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


def endless_batches(loader: torch.utils.data.DataLoader, state: TrainState, device, memory_format) -> Iterator:
    """HR batches on `device`, epoch after epoch, each epoch reshuffled; a resumed run first replays the stream to
    where it stopped. Counts the images the crop stage skipped into `state`."""
    while True:
        loader.dataset.set_epoch(state.epoch)
        batches = iter(loader)
        for _ in range(state.batches_in_epoch):
            next(batches, None)
        batches_before = state.batches_in_epoch
        for batch in batches:
            state.batches_in_epoch += 1
            state.too_small += batch["too_small"]
            state.corrupt += batch["corrupt"]
            yield batch["hr"].to(device, memory_format=memory_format, non_blocking=True)
        if state.batches_in_epoch == batches_before == 0:
            raise RuntimeError(
                f"the training data yielded no full batch of {loader.batch_size} crops: too few usable images"
            )
        state.epoch, state.batches_in_epoch = state.epoch + 1, 0


def stop_on_signals(accelerator: Accelerator) -> None:
    """SIGTERM/SIGINT (a scheduler's preemption, Ctrl-C) set Accelerate's trigger; the loop checks it once per
    step on every rank (`accelerator.check_trigger()`), so a signal to any rank stops all at the same step."""

    def handler(signum, frame):
        accelerator.set_trigger()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# --------------------------------------------------------------------------------------------------------------
# The discriminator's view


def freeze_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Put `model`'s BatchNorm layers in eval mode: they normalise by, and keep, their running statistics while
    their scale and shift still learn. A GAN stage then trains the generator users get (no batch statistics that
    drift with each batch's colour), and the EMA averages weights only."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model


def discriminator_verdict(discriminator, hr: torch.Tensor, sr: torch.Tensor, features: tuple[dict, dict], roll: bool):
    """D's logits for the HR and the SR batch, from one forward: the paper's D judges the images
    (`discriminator_batch`), a `VGGFeatureDiscriminator` the VGG features the content loss computed (`features`:
    SR's and HR's, from `ContentLoss.features`)."""
    model = getattr(discriminator, "module", discriminator)  # under DDP, the wrapped model
    if isinstance(model, VGGFeatureDiscriminator):
        sr_features, hr_features = features
        judged = {tap: torch.cat([hr_features[tap], sr_features[tap]]) for tap in model.taps}
    else:
        judged = discriminator_batch(hr, sr, roll)
    return discriminator(judged).float().chunk(2)


def discriminator_batch(hr: torch.Tensor, sr: torch.Tensor, roll: bool) -> torch.Tensor:
    """HR and SR in one batch, the same for D's and G's updates: one forward (DDP-friendly), and D's train-mode
    BatchNorm normalises by batch statistics, so a fake-only batch would meet another D when it judges G's SR.
    Rolled together when `roll`."""
    batch = torch.cat([hr, sr])
    return roll_randomly(batch) if roll else batch


def roll_together(sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SR and HR rolled by one random offset (`roll_randomly`), for the VGG19 features of the content loss and of a
    VGG-feature D: VGG pools by 16 px as the paper D strides, and crops start on LR pixels, so without a roll G's
    sub-pixel grid meets VGG's pooling grid in the same place at every step. The features' distance is the same up
    to the wrapped edge, which SR and HR share. Kept on an A/B (docs/experiments.md), not on a measured gradient."""
    return roll_randomly(torch.cat([sr, hr])).chunk(2)


def roll_randomly(images: torch.Tensor, period: int = SRDiscriminator.total_stride) -> torch.Tensor:
    """Roll a batch (HR and SR alike) by one random offset below D's total stride (`--d-random-shift`).

    D's strided convolutions make its input gradient repeat every `period` pixels, in step with G's sub-pixel
    grid (crops start on LR pixels), so G would get a different push at each of its scale x scale output phases:
    the push that teaches a checkerboard. A fresh offset each step spreads it evenly over the phases. A roll moves
    no content in or out, and HR and SR share it, so D cannot tell them apart by it. Not in the paper."""
    dy, dx = torch.randint(0, period, (2,)).tolist()
    return torch.roll(images, shifts=(dy, dx), dims=(2, 3))


def gan_health(g_adversarial, d_loss, real_logits, fake_logits) -> dict:
    """D(real) and D(fake) as probabilities; warn when D wins outright (G gets no gradient) or losses diverge."""
    d_real, d_fake = torch.sigmoid(real_logits).mean().item(), torch.sigmoid(fake_logits).mean().item()
    if not (math.isfinite(d_loss.item()) and math.isfinite(g_adversarial.item())):
        logger.warning("GAN losses are not finite: D %s, G adversarial %s", d_loss.item(), g_adversarial.item())
    elif d_real > 0.99 and d_fake < 0.01:
        logger.warning(
            "the discriminator has won outright (D(real)=%.3f, D(fake)=%.3f): G gets no useful adversarial "
            "gradient; consider a lower --d-lr",
            d_real,
            d_fake,
        )
    return {
        "loss/d": d_loss.item(),
        "loss/g_adversarial": g_adversarial.item(),
        "gan/d_real": d_real,
        "gan/d_fake": d_fake,
    }


# --------------------------------------------------------------------------------------------------------------
# Checkpoints: written to a temporary folder and renamed into place, so a crash never leaves half a checkpoint.


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """Complete checkpoints under `output_dir`, oldest first."""
    found = (Path(output_dir) / "checkpoints").glob("checkpoint-*")
    return sorted((p for p in found if p.name.split("-")[-1].isdigit()), key=lambda p: int(p.name.split("-")[-1]))


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, keep: int, generator) -> None:
    """`save_state` into checkpoint-<step>, with a ready-to-use generator folder beside it; keep the last `keep`."""
    final = Path(output_dir) / "checkpoints" / f"checkpoint-{step}"
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if accelerator.is_main_process:
        generator.save_pretrained(partial / "generator")  # for --init-from, srgan-eval, ...
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        for old in checkpoint_dirs(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def resolve_resume(resume: str, output_dir: Path) -> Path | None:
    """`--resume latest` (the newest complete checkpoint, or None) or a checkpoint folder."""
    if resume != "latest":
        return Path(resume)
    found = checkpoint_dirs(output_dir)
    return found[-1] if found else None


# --------------------------------------------------------------------------------------------------------------
# Validation


@torch.inference_mode()
def validate(
    generator: SRGenerator, pairs: list[Pair], scale: int, device, lpips_model=None
) -> tuple[dict, np.ndarray]:
    """PSNR/SSIM, artefacts and (with `lpips_model`) LPIPS-alex on the validation pairs, and a sample grid
    (bicubic | SR | HR) of the first one."""
    modes = {module: module.training for module in generator.modules()}  # some layers may be frozen in eval mode
    generator.eval()
    first_sr = []

    def super_resolve(lr: Image.Image) -> Image.Image:
        x = torch.from_numpy(np.asarray(lr.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        y = generator(x.to(device)).float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        sr = Image.fromarray(np.round(y * 255).astype(np.uint8)).convert(lr.mode)
        if not first_sr:
            first_sr.append(sr)
        return sr

    metrics = evaluate_pairs(pairs, super_resolve, scale, lpips_model=lpips_model)
    first = pairs[0]
    grid = np.concatenate(
        [np.asarray(im.convert("RGB")) for im in (bicubic_upscale(first.lr, scale), first_sr[0], first.hr)], axis=1
    )
    for module, training in modes.items():
        module.train(training)
    return metrics, grid


def run_validation(
    accelerator: Accelerator, exported, raw, pairs: list[Pair], scale: int, step: int, lpips_model=None
) -> dict:
    """Validate the generator users get (`exported`); when that is an EMA, also the `raw` generator it averages,
    since early in training the average lags behind and hides what the adversarial loss is doing."""
    metrics = {}
    if accelerator.is_main_process:
        metrics = validate_and_log(accelerator, exported, pairs, scale, step, lpips_model=lpips_model) | {"step": step}
        if raw is not exported:
            validate_and_log(accelerator, raw, pairs, scale, step, prefix="val_raw", lpips_model=lpips_model)
    accelerator.wait_for_everyone()
    return metrics


def validate_and_log(
    accelerator, generator, pairs, scale: int, step: int, prefix: str = "val", lpips_model=None
) -> dict:
    metrics, grid = validate(generator, pairs, scale, accelerator.device, lpips_model)
    accelerator.log({f"{prefix}/{key}": value for key, value in metrics.items() if key != "images"}, step=step)
    accelerator.get_tracker("tensorboard").log_images(
        {f"{prefix}/bicubic_sr_hr": grid[None]}, step=step, dataformats="NHWC"
    )
    logger.info(
        "step %d: %svalidation PSNR %.2f dB, SSIM %.4f, %ssharpness %.3f, sub-pixel pattern %.2f, colour shift %.2f",
        step,
        "raw generator " if prefix == "val_raw" else "",
        metrics["psnr"],
        metrics["ssim"],
        f"LPIPS-alex {metrics['lpips']:.4f}, " if "lpips" in metrics else "",
        metrics["sharpness"],
        metrics["phase_pattern"],
        metrics["colour_shift"],
    )
    return metrics


# --------------------------------------------------------------------------------------------------------------
# The end of a run


def check_ranks_agree(accelerator: Accelerator, generator) -> None:
    """DDP keeps replicas identical; verify it (cheaply, once) before exporting one of them."""
    flat = torch.cat([p.detach().float().flatten() for p in accelerator.unwrap_model(generator).parameters()])
    position = torch.arange(flat.numel(), device=flat.device) % 7  # order-sensitive, unlike plain sums
    fingerprint = torch.stack([flat.sum(), flat.abs().sum(), (flat * position).sum()])
    everyone = accelerator.gather(fingerprint[None]).cpu()
    if not torch.equal(everyone, everyone[:1].expand_as(everyone)):
        raise RuntimeError(f"generator weights differ across ranks: {everyone.tolist()}")
    logger.info("generator weights identical on all %d rank(s)", accelerator.num_processes)


def export(accelerator: Accelerator, args, generator, discriminator, state: TrainState, val_metrics: dict) -> None:
    """save_pretrained the generator users get (and the discriminator) into --output-dir, with a card describing
    the run; push the folder to the Hub with --push-to-hub."""
    skipped = accelerator.reduce(torch.tensor([state.too_small, state.corrupt], device=accelerator.device), "sum")
    if accelerator.is_main_process:
        output_dir = Path(args.output_dir)
        training = training_summary(args, accelerator, state, val_metrics, skipped.tolist())
        # save_pretrained never overwrites a README.md; the card of an earlier export (before a resume) is stale
        for card in (output_dir / "README.md", output_dir / "discriminator" / "README.md"):
            card.unlink(missing_ok=True)
        card_fields = {"training": training, "degradation": args.degradation}
        generator.save_pretrained(output_dir, model_card_kwargs=card_fields)
        if generator.base_model:  # the Hub's card metadata for "fine-tuned from"
            card = ModelCard.load(output_dir / "README.md")
            card.data.base_model = generator.base_model
            card.save(output_dir / "README.md")
        if discriminator is not None:
            accelerator.unwrap_model(discriminator).save_pretrained(
                output_dir / "discriminator", model_card_kwargs={"training": training}
            )
        (output_dir / "training_args.json").write_text(json.dumps(vars(args), indent=2))
        logger.info("exported to %s", output_dir)
        if args.push_to_hub:
            from huggingface_hub import HfApi

            api = HfApi()
            api.create_repo(args.push_to_hub, exist_ok=True)
            api.upload_folder(
                repo_id=args.push_to_hub,
                folder_path=output_dir,
                ignore_patterns=["checkpoints/*", "logs/*", "tensorboard/*", "*.partial/*"],
            )
            logger.info("pushed to https://huggingface.co/%s", args.push_to_hub)
    accelerator.wait_for_everyone()


def hardware(accelerator: Accelerator) -> str:
    """ "1× NVIDIA H100 80GB HBM3" or "1 process on 2 CPU cores" (this machine; other nodes alike)."""
    if accelerator.device.type == "cuda":
        return f"{accelerator.num_processes}× {torch.cuda.get_device_name(accelerator.device)}"
    return f"{accelerator.num_processes} process(es) on {os.cpu_count()} CPU cores"


def lr_decay_step(lr_decay_at: float, max_steps: int) -> int:
    """The update from which the learning rates are 10x lower (`--lr-decay-at` as a fraction of --max-steps)."""
    return math.ceil(lr_decay_at * max_steps)


def training_summary(args, accelerator: Accelerator, state: TrainState, val_metrics: dict, skipped: list) -> str:
    """The card's "Training" section: stage, losses, data, steps, hardware and the command."""
    decay = lr_decay_step(args.lr_decay_at, args.max_steps)
    lines = [
        f"- Stage: `{args.stage}`, content loss `{args.content_loss}`"
        + (f" + {args.phase_weight:g} x sub-pixel phase mean" if args.phase_weight else "")
        + (f", adversarial x {args.adversarial_weight}" if args.stage == "srgan" else "")
        + (f", discriminator `{args.discriminator}`" if args.stage == "srgan" else "")
        + (", the generator's BatchNorm frozen (running statistics)" if args.freeze_batchnorm else "")
        + (", SR and HR rolled by a random offset for D and the VGG features" if args.d_random_shift else ""),
        f"- Data: {', '.join(f'`{Path(d).name or d}`' for d in args.dataset)}; {args.crop_size} px HR crops, "
        f"x{args.scale} {args.degradation} degradation; images skipped (each time they came up, all ranks): "
        f"{skipped[0]} smaller than a crop, {skipped[1]} corrupt",
        f"- Steps: {state.step} updates"
        + (f" (stopped early; --max-steps {args.max_steps})" if state.step < args.max_steps else "")
        + f" of batch {args.batch_size} x {accelerator.num_processes} process(es)"
        f" x {args.gradient_accumulation_steps} accumulation; Adam lr {args.lr} (beta1 {args.beta1})"
        + (f", x0.1 from step {decay}" if decay <= state.step else "")
        + (f", EMA {args.ema_decay}" if args.ema else ""),
        f"- Hardware: {hardware(accelerator)}, mixed precision `{accelerator.mixed_precision}`",
        f"- Command: `accelerate launch train/train.py {' '.join(sys.argv[1:])}`",
    ]
    if val_metrics:
        lines.append(
            f"- Validation on `{Path(args.val_dir).name}`"
            + (f" (real-world degraded, seed {args.seed})" if args.degradation == "realworld" else "")
            + f" at step {val_metrics['step']}: "
            f"PSNR {val_metrics['psnr']:.2f} dB, SSIM {val_metrics['ssim']:.4f}"
            + (f", LPIPS-alex {val_metrics['lpips']:.4f}" if "lpips" in val_metrics else "")
        )
    return "\n".join(lines)
