"""Train SRResNet (MSE) and SRGAN (adversarial) with Accelerate on a streamed image corpus.

    # stage 1: SRResNet, pixel MSE (paper: 1e6 updates at lr 1e-4)
    accelerate launch train/train.py --stage srresnet --dataset DATA --output-dir runs/srresnet-x4
    # stage 2: SRGAN from the SRResNet (paper: 1e5 updates at 1e-4, then 1e5 at 1e-5)
    accelerate launch train/train.py --stage srgan --init-from runs/srresnet-x4 --dataset DATA \
        --output-dir runs/srgan-x4

One script for one CPU, one GPU, many GPUs and many nodes: Accelerate wraps the models in DDP and handles mixed
precision; every rank streams its own shards of the data. The loop below reads like the paper's algorithm:
sample a batch of (LR, HR) crops; update D on real vs generated HR (srgan stage); update G on the content loss
plus 1e-3 x the adversarial loss.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from PIL import Image
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from srgan_hub import SRDiscriminator, SRGenerator
from srgan_hub.data import make_dataloader
from srgan_hub.evaluate import bicubic_upscale, evaluate_pairs, load_folder
from srgan_hub.losses import AdversarialLoss, ContentLoss, pixel_mse

logger = logging.getLogger("train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["srresnet", "srgan"], required=True)
    p.add_argument(
        "--dataset",
        nargs="+",
        required=True,
        help="folders of images, a folder/glob of parquet or webdataset shards, or a Hub dataset id",
    )
    p.add_argument("--image-column", default="image", help="image column of a Hub/parquet dataset")
    p.add_argument("--output-dir", required=True)
    p.add_argument(
        "--max-steps", type=int, default=1_000_000, help="optimizer updates (paper: 1e6 srresnet, 2e5 srgan)"
    )
    p.add_argument("--batch-size", type=int, default=16, help="per process (paper: 16)")
    p.add_argument("--crop-size", type=int, default=96, help="HR crop side in pixels (paper: 96)")
    p.add_argument("--scale", type=int, default=4, choices=[2, 4, 8])
    p.add_argument("--degradation", choices=["bicubic", "gaussian"], default="bicubic")
    p.add_argument("--blur-sigma", type=float, default=1.5, help="Gaussian degradation's sigma, HR pixels")
    p.add_argument("--crops-per-image", type=int, default=4, help="crops cut from each decoded image")
    p.add_argument("--shuffle-buffer", type=int, default=256, help="crops held for shuffling, per worker")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers per process")
    # models
    p.add_argument("--num-blocks", type=int, default=16)
    p.add_argument("--num-channels", type=int, default=64)
    p.add_argument("--upsampler", choices=["pixelshuffle", "transpose"], default="pixelshuffle")
    p.add_argument("--block", choices=["residual", "inception"], default="residual")
    p.add_argument("--init-from", help="generator to start from (folder or Hub id); required for --stage srgan")
    p.add_argument("--init-discriminator-from", help="discriminator to start from (folder or Hub id)")
    # optimisation
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of G (paper: 1e-4)")
    p.add_argument("--d-lr", type=float, default=None, help="Adam learning rate of D (default: --lr)")
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument(
        "--lr-decay-at",
        type=float,
        default=None,
        help="fraction of --max-steps after which both lrs drop 10x (default: 0.5 for srgan, never for srresnet)",
    )
    p.add_argument("--gradient-accumulation-steps", type=int, default=1)
    p.add_argument("--max-grad-norm", type=float, default=0.0, help="clip gradients to this norm (0: off)")
    # losses
    p.add_argument("--content-loss", choices=["mse", "vgg22", "vgg54"], default="mse")
    p.add_argument("--pixel-weight", type=float, default=0.0, help="pixel MSE added to a VGG content loss")
    p.add_argument("--adversarial-loss", choices=["standard", "relativistic"], default="standard")
    p.add_argument("--adversarial-weight", type=float, default=1e-3)
    p.add_argument(
        "--d-random-shift",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="roll D's input by a random offset each step (not in the paper; see roll_randomly)",
    )
    freeze = p.add_mutually_exclusive_group()  # --freeze-upsampling already freezes the sub-pixel convolutions
    freeze.add_argument(
        "--freeze-upsampling",
        action="store_true",
        help="srgan: keep G's upsampling layers and output conv as the SRResNet learned them (not in the paper; "
        "see freeze_upsampling)",
    )
    freeze.add_argument(
        "--freeze-subpixel",
        action="store_true",
        help="srgan: keep only G's sub-pixel convolutions as the SRResNet learned them; the output conv, which "
        "treats every HR pixel alike, trains (not in the paper; see freeze_upsampling)",
    )
    p.add_argument(
        "--d-warmup-steps",
        type=int,
        default=0,
        help="srgan: train D alone against the initial G for this many steps before G sees D (not in the paper)",
    )
    p.add_argument("--vgg-weights", help="VGG19 ImageNet weights (torchvision .pth or .safetensors)")
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep an EMA of G and export it (default: on for srgan, off for srresnet)",
    )
    p.add_argument("--ema-decay", type=float, default=0.999)
    # bookkeeping
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--resume", help="'latest' or a checkpoint folder")
    p.add_argument("--val-dir", help="HR images for validation (e.g. Set5)")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--push-to-hub", metavar="ORG/NAME", help="push the exported models to this Hub repo")
    args = p.parse_args(argv)
    if args.stage == "srgan" and not args.init_from:
        p.error("--stage srgan starts from a trained SRResNet: pass --init-from FOLDER_OR_ID")
    if args.stage != "srgan" and (args.freeze_upsampling or args.freeze_subpixel or args.d_warmup_steps):
        p.error("--freeze-upsampling, --freeze-subpixel and --d-warmup-steps belong to --stage srgan")
    if args.ema is None:
        args.ema = args.stage == "srgan"
    if args.lr_decay_at is None:
        args.lr_decay_at = 0.5 if args.stage == "srgan" else 1.0
    args.d_lr = args.d_lr or args.lr
    return args


class TrainState:
    """What `save_state` must restore beyond models and optimizers: where we are in training and in the data."""

    def __init__(self):
        self.step, self.epoch, self.batches_in_epoch = 0, 0, 0
        self.too_small, self.corrupt = 0, 0

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


def lr_schedule(decay_at: float, max_steps: int):
    """Paper: constant lr, divided by 10 for the last part of training."""
    return lambda step: 0.1 if step >= decay_at * max_steps else 1.0


def build_generator(args) -> SRGenerator:
    if args.init_from:
        return SRGenerator.from_pretrained(args.init_from)
    return SRGenerator(
        scale=args.scale,
        num_channels=args.num_channels,
        num_blocks=args.num_blocks,
        upsampler=args.upsampler,
        block=args.block,
    )


# --------------------------------------------------------------------------------------------------------------
# Checkpoints: written to a temporary folder and renamed into place, so a crash never leaves half a checkpoint.


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    found = (output_dir / "checkpoints").glob("checkpoint-*")
    return sorted((p for p in found if p.name.split("-")[-1].isdigit()), key=lambda p: int(p.name.split("-")[-1]))


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, keep: int, generator) -> None:
    final = output_dir / "checkpoints" / f"checkpoint-{step}"
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if accelerator.is_main_process:
        # A ready-to-use generator folder beside the training state (for --init-from, srgan-eval, ...).
        accelerator.unwrap_model(generator).save_pretrained(partial / "generator")
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        for old in checkpoint_dirs(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def resolve_resume(resume: str, output_dir: Path) -> Path | None:
    if resume != "latest":
        return Path(resume)
    found = checkpoint_dirs(output_dir)
    return found[-1] if found else None


# --------------------------------------------------------------------------------------------------------------
# Validation


@torch.inference_mode()
def validate(generator: SRGenerator, pairs, scale: int, device) -> tuple[dict, np.ndarray]:
    """PSNR/SSIM and artefacts on the validation images, and a sample grid (LR bicubic | SR | HR) of the first one."""
    was_training = generator.training
    generator.eval()

    first_sr = []  # for the sample grid

    def super_resolve(lr):
        x = torch.from_numpy(np.asarray(lr.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        y = generator(x.to(device)).float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        sr = Image.fromarray(np.round(y * 255).astype(np.uint8)).convert(lr.mode)
        if not first_sr:
            first_sr.append(sr)
        return sr

    # PSNR/SSIM, and what PSNR hides and adversarial training can bring: checkerboard, colour cast, sharpness.
    metrics = evaluate_pairs(pairs, super_resolve, scale)
    first = pairs[0]
    grid = np.concatenate(
        [np.asarray(im.convert("RGB")) for im in (bicubic_upscale(first.lr, scale), first_sr[0], first.hr)], axis=1
    )
    generator.train(was_training)
    return metrics, grid


# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with="tensorboard",
        project_dir=str(output_dir),
    )
    logging.basicConfig(
        level=logging.INFO if accelerator.is_main_process else logging.WARNING,
        format=f"%(asctime)s [rank {accelerator.process_index}] %(levelname)s %(message)s",
    )
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file is too chatty
    set_seed(args.seed, device_specific=True)
    gan = args.stage == "srgan"
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format

    # Models, losses, optimisers
    generator = build_generator(args).train().to(memory_format=memory_format)
    if args.freeze_upsampling or args.freeze_subpixel:
        freeze_upsampling(generator, output_conv=args.freeze_upsampling)
    g_parameters = [p for p in generator.parameters() if p.requires_grad]
    g_optimizer = torch.optim.Adam(g_parameters, lr=args.lr, betas=(args.beta1, 0.999))
    g_scheduler = torch.optim.lr_scheduler.LambdaLR(g_optimizer, lr_schedule(args.lr_decay_at, args.max_steps))
    content_loss = ContentLoss(args.content_loss, args.pixel_weight, args.vgg_weights).to(accelerator.device)
    if gan:
        discriminator = (
            (
                SRDiscriminator.from_pretrained(args.init_discriminator_from)
                if args.init_discriminator_from
                else SRDiscriminator()
            )
            .train()
            .to(memory_format=memory_format)
        )
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=args.d_lr, betas=(args.beta1, 0.999))
        d_scheduler = torch.optim.lr_scheduler.LambdaLR(d_optimizer, lr_schedule(args.lr_decay_at, args.max_steps))
        adversarial_loss = AdversarialLoss(args.adversarial_loss)
        generator, discriminator, g_optimizer, d_optimizer = accelerator.prepare(
            generator, discriminator, g_optimizer, d_optimizer
        )
    else:
        generator, g_optimizer = accelerator.prepare(generator, g_optimizer)
    # Schedulers are not prepared: Accelerate would step them once per process, shifting the lr decay.
    schedulers = [g_scheduler] + ([d_scheduler] if gan else [])
    state = TrainState()
    ema = None
    if args.ema:
        ema = AveragedModel(
            accelerator.unwrap_model(generator), multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True
        )
    for obj in [*schedulers, state] + ([ema] if ema is not None else []):
        accelerator.register_for_checkpointing(obj)

    if args.resume:
        checkpoint = resolve_resume(args.resume, output_dir)
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            logger.info("resumed from %s at step %d", checkpoint, state.step)
        else:
            logger.info("--resume latest: no checkpoint in %s yet, starting fresh", output_dir)

    # Data: each rank streams its own shards; the loader is deliberately not passed to accelerator.prepare.
    loader = make_dataloader(
        args.dataset,
        batch_size=args.batch_size,
        crop_size=args.crop_size,
        scale=args.scale,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
        num_workers=args.num_workers,
        crops_per_image=args.crops_per_image,
        shuffle_buffer=args.shuffle_buffer,
        image_column=args.image_column,
        degradation=args.degradation,
        sigma=args.blur_sigma,
        seed=args.seed,
    )
    val_pairs = load_folder(args.val_dir, args.scale) if args.val_dir and accelerator.is_main_process else None

    accelerator.init_trackers("tensorboard", config={k: str(v) for k, v in vars(args).items()})
    stop_requested = install_signal_handlers(accelerator)
    progress = tqdm(
        total=args.max_steps,
        initial=state.step,
        disable=not accelerator.is_main_process,
        desc=args.stage,
        dynamic_ncols=True,
    )
    last_log, samples_since_log = time.perf_counter(), 0
    val_metrics: dict = {}

    stopping = False  # set at a step boundary, where all ranks check together
    while state.step < args.max_steps and not stopping:
        loader.dataset.set_epoch(state.epoch)
        batches = iter(loader)
        for _ in range(state.batches_in_epoch):  # resuming mid-epoch: replay the stream to where it stopped
            next(batches, None)
        batches_before = state.batches_in_epoch
        for batch in batches:
            lr = batch["lr"].to(accelerator.device, memory_format=memory_format, non_blocking=True)
            hr = batch["hr"].to(accelerator.device, memory_format=memory_format, non_blocking=True)
            state.batches_in_epoch += 1
            state.too_small += batch["too_small"]
            state.corrupt += batch["corrupt"]

            # D warm-up: G's first adversarial gradients then come from a D that already tells HR from SR, not
            # from a random D's arbitrary preferences. (In our CPU runs it did not change what G learned.)
            train_generator = not gan or state.step >= args.d_warmup_steps
            with accelerator.accumulate(*([generator, discriminator] if gan else [generator])):
                # --- generator update: content loss (+ 1e-3 adversarial loss) ---
                with torch.set_grad_enabled(train_generator):
                    sr = generator(lr)
                    g_content = content_loss(sr, hr)
                    g_loss = g_content
                    if gan and train_generator:
                        # D judges SR in the same company as in its own update below, one batch of real and SR:
                        # its train-mode BatchNorm normalises by batch statistics, so a fake-only batch meets
                        # another D.
                        with accelerator.no_sync(discriminator):  # D only judges here: no D all-reduce
                            d_input = discriminator_batch(hr, sr, args.d_random_shift)
                            real_logits, fake_logits = discriminator(d_input).float().chunk(2)
                        g_adversarial = adversarial_loss.generator(real_logits.detach(), fake_logits)
                        g_loss = g_content + args.adversarial_weight * g_adversarial
                if train_generator:
                    # Gradients for G's parameters only: D's gradients belong to D's own update below.
                    accelerator.backward(g_loss, inputs=g_parameters)
                    if args.max_grad_norm and accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(g_parameters, args.max_grad_norm)
                    g_optimizer.step()
                    g_optimizer.zero_grad(set_to_none=True)

                # --- discriminator update: real HR vs the (detached) SR ---
                if gan:
                    logits = discriminator(discriminator_batch(hr, sr.detach(), args.d_random_shift))
                    real_logits, fake_logits = logits.float().chunk(2)
                    d_loss = adversarial_loss.discriminator(real_logits, fake_logits)
                    accelerator.backward(d_loss)
                    if args.max_grad_norm and accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(discriminator.parameters(), args.max_grad_norm)
                    d_optimizer.step()
                    d_optimizer.zero_grad(set_to_none=True)

            if not accelerator.sync_gradients:
                continue  # still accumulating
            # fp16: a step the GradScaler skipped (inf/NaN gradients) must not advance schedules or the EMA. G's
            # schedule counts G's own updates, so with --d-warmup-steps G's lr drops that many steps after D's.
            if train_generator and not g_optimizer.step_was_skipped:
                g_scheduler.step()
                if ema is not None:
                    ema.update_parameters(accelerator.unwrap_model(generator))
            if gan and not d_optimizer.step_was_skipped:
                d_scheduler.step()
            state.step += 1
            progress.update(1)
            samples_since_log += args.batch_size * args.gradient_accumulation_steps * accelerator.num_processes

            if state.step % args.log_every == 0:
                logs = {
                    "loss/g_total": g_loss.item(),
                    "loss/content": g_content.item(),
                    "loss/pixel_mse": pixel_mse(sr.detach(), hr).item(),
                    "lr": g_scheduler.get_last_lr()[0],
                    "data/skipped_too_small": state.too_small,
                    "data/skipped_corrupt": state.corrupt,
                }
                now = time.perf_counter()
                logs["samples_per_s"] = samples_since_log / (now - last_log)
                last_log, samples_since_log = now, 0
                if gan:
                    if not train_generator:  # D warm-up: G was not judged, so score D's own SR logits for the log
                        g_adversarial = adversarial_loss.generator(real_logits.detach(), fake_logits.detach())
                    logs |= gan_health(g_adversarial, d_loss, real_logits, fake_logits)
                accelerator.log(logs, step=state.step)
                postfix = {"loss": f"{logs['loss/g_total']:.4f}", "sps": f"{logs['samples_per_s']:.1f}"}
                if gan:
                    postfix |= {"D(real)": f"{logs['gan/d_real']:.2f}", "D(fake)": f"{logs['gan/d_fake']:.2f}"}
                progress.set_postfix(postfix)
                if not math.isfinite(logs["loss/g_total"]):
                    logger.warning("step %d: generator loss is %s", state.step, logs["loss/g_total"])

            if args.val_dir and state.step % args.val_every == 0:
                val_metrics = run_validation(accelerator, generator, ema, val_pairs, args.scale, state.step)
            if state.step % args.checkpoint_every == 0:
                save_checkpoint(
                    accelerator,
                    output_dir,
                    state.step,
                    args.keep_checkpoints,
                    export_model(accelerator, generator, ema),
                )
            stopping = stop_requested()  # a collective: called once per step, on every rank
            if state.step >= args.max_steps or stopping:
                break
        else:  # the stream ran dry: next epoch, reshuffled
            if state.batches_in_epoch == batches_before == 0:
                raise RuntimeError(
                    f"{args.dataset} yielded no full batch of {args.batch_size} crops of "
                    f"{args.crop_size} px on rank {accelerator.process_index}: too few usable images"
                )
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0

    progress.close()
    if stopping:
        logger.warning("stop requested: saving a checkpoint at step %d and exiting", state.step)
    elif args.val_dir and state.step % args.val_every:
        val_metrics = run_validation(accelerator, generator, ema, val_pairs, args.scale, state.step)
    if state.step % args.checkpoint_every:
        save_checkpoint(
            accelerator, output_dir, state.step, args.keep_checkpoints, export_model(accelerator, generator, ema)
        )
    check_ranks_agree(accelerator, generator)
    # Stopped early or not, the output folder holds a usable model; its card says how far training got.
    export(accelerator, args, generator, discriminator if gan else None, ema, state, val_metrics)
    accelerator.end_training()


def check_ranks_agree(accelerator: Accelerator, generator) -> None:
    """DDP keeps replicas identical; verify it (cheaply, once) before exporting one of them."""
    flat = torch.cat([p.detach().float().flatten() for p in accelerator.unwrap_model(generator).parameters()])
    position = torch.arange(flat.numel(), device=flat.device) % 7  # order-sensitive, unlike plain sums
    fingerprint = torch.stack([flat.sum(), flat.abs().sum(), (flat * position).sum()])
    everyone = accelerator.gather(fingerprint[None]).cpu()
    if not torch.equal(everyone, everyone[:1].expand_as(everyone)):
        raise RuntimeError(f"generator weights differ across ranks: {everyone.tolist()}")
    logger.info("generator weights identical on all %d rank(s)", accelerator.num_processes)


def export_model(accelerator: Accelerator, generator, ema) -> torch.nn.Module:
    """The generator users get: the EMA weights when an EMA is kept."""
    return ema.module if ema is not None else accelerator.unwrap_model(generator)


def freeze_upsampling(generator: SRGenerator, output_conv: bool = True) -> None:
    """Keep G's sub-pixel upsampling layers (and, with `output_conv`, its 9x9 output conv) at their SRResNet weights.

    Each sub-pixel convolution has its own weights for each of the scale x scale output phases. The adversarial
    gradient rewards high frequencies, and the cheapest ones G can make are a fixed imbalance between those phases:
    a checkerboard. In our CPU runs the whole pattern sat in the upsampling layers and output conv (putting their
    SRResNet weights back removed it and kept the extra sharpness, which sat in the trunk). Frozen, they map the
    trunk's new features to the HR grid as phase-evenly as MSE training left them; a pattern then grew more slowly,
    from the trunk alone (see the README's SRGAN runs).

    The output conv, though, works on the HR grid and treats every pixel alike, so it cannot make a phase pattern
    of its own; and it is where most of D's gradient lands (--freeze-subpixel trains it). At the paper's 1e-3
    weight, 500 steps into a --freeze-upsampling run, `benchmarks/gan_gradients.py` measured the adversarial
    gradient at 0.2-0.5x the content loss's for the trunk's layers and 3.5x for the output conv's. Not in the
    paper, and not needed in a longer run: over 9,000 GPU updates the unfrozen recipe grew no more pattern than the
    SRResNet's in its EMA and gained the most sharpness (the bundled srgan-x4; README, Results)."""
    for layer in (generator.upsample, generator.tail) if output_conv else (generator.upsample,):
        layer.requires_grad_(False)


def discriminator_batch(hr: torch.Tensor, sr: torch.Tensor, roll: bool) -> torch.Tensor:
    """HR and SR in one batch, the same for D's and G's updates: one forward (DDP-friendly), and D's train-mode
    BatchNorm sees the same company in both. Rolled together when `roll` (--d-random-shift)."""
    batch = torch.cat([hr, sr])
    return roll_randomly(batch) if roll else batch


def roll_randomly(images: torch.Tensor, period: int = SRDiscriminator.total_stride) -> torch.Tensor:
    """Roll a batch (HR and SR alike) by one random offset below D's total stride.

    D's strided convolutions make its gradient with respect to its input repeat every `period` pixels, in step with
    G's sub-pixel grid (crops start on LR pixels). G then receives a different push at each of its scale x scale
    output phases and learns a fixed pattern that repeats every `scale` pixels: a checkerboard. A fresh offset each
    step spreads D's gradient evenly over the phases. A roll moves no content in or out, and HR and SR share it,
    so D cannot tell them apart by it. Not in the paper. In our short CPU runs it did not stop the pattern (see the
    README), so it is off by default."""
    dy, dx = torch.randint(0, period, (2,)).tolist()
    return torch.roll(images, shifts=(dy, dx), dims=(2, 3))


def gan_health(g_adversarial, d_loss, real_logits, fake_logits) -> dict:
    """D(real) and D(fake) as probabilities; warn when D wins outright (G gets no gradient) or loses track."""
    d_real, d_fake = torch.sigmoid(real_logits).mean().item(), torch.sigmoid(fake_logits).mean().item()
    if not (math.isfinite(d_loss.item()) and math.isfinite(g_adversarial.item())):
        logger.warning("GAN losses are not finite: D %s, G adversarial %s", d_loss.item(), g_adversarial.item())
    elif d_real > 0.99 and d_fake < 0.01:
        logger.warning(
            "discriminator has collapsed the game (D(real)=%.3f, D(fake)=%.3f): G gets no useful "
            "adversarial gradient; consider a lower --d-lr",
            d_real,
            d_fake,
        )
    return {
        "loss/d": d_loss.item(),
        "loss/g_adversarial": g_adversarial.item(),
        "gan/d_real": d_real,
        "gan/d_fake": d_fake,
    }


def run_validation(accelerator, generator, ema, pairs, scale, step) -> dict:
    """Validate the generator users get; with an EMA, also the raw generator, since in a short run the average
    lags far behind it and hides what the adversarial loss is doing (a pattern growing, a colour cast)."""
    metrics = {}
    if accelerator.is_main_process:
        metrics = validate_and_log(accelerator, export_model(accelerator, generator, ema), pairs, scale, step)
        if ema is not None:
            validate_and_log(accelerator, accelerator.unwrap_model(generator), pairs, scale, step, raw=True)
        metrics["step"] = step
    accelerator.wait_for_everyone()
    return metrics


def validate_and_log(accelerator, generator, pairs, scale: int, step: int, raw: bool = False) -> dict:
    metrics, grid = validate(generator, pairs, scale, accelerator.device)
    prefix = "val_raw" if raw else "val"
    accelerator.log({f"{prefix}/{key}": value for key, value in metrics.items() if key != "images"}, step=step)
    accelerator.get_tracker("tensorboard").log_images(
        {f"{prefix}/bicubic_sr_hr": grid[None]}, step=step, dataformats="NHWC"
    )
    logger.info(
        "step %d: %svalidation PSNR %.2f dB, SSIM %.4f, sharpness %.3f, sub-pixel pattern %.2f, colour shift %.2f",
        step,
        "raw generator " if raw else "",
        metrics["psnr"],
        metrics["ssim"],
        metrics["sharpness"],
        metrics["phase_pattern"],
        metrics["colour_shift"],
    )
    return metrics


def export(accelerator, args, generator, discriminator, ema, state: TrainState, val_metrics: dict) -> None:
    """save_pretrained the generator (and discriminator) into --output-dir, with a card describing the run."""
    skipped = accelerator.reduce(torch.tensor([state.too_small, state.corrupt], device=accelerator.device), "sum")
    if accelerator.is_main_process:
        output_dir = Path(args.output_dir)
        training = training_summary(args, accelerator, state, val_metrics, skipped.tolist())
        # save_pretrained never overwrites a README.md; the card of an earlier export (before a resume) is stale
        for card in (output_dir / "README.md", output_dir / "discriminator" / "README.md"):
            card.unlink(missing_ok=True)
        export_model(accelerator, generator, ema).save_pretrained(output_dir, model_card_kwargs={"training": training})
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


def training_summary(args, accelerator, state: TrainState, val_metrics: dict, skipped: list[int]) -> str:
    device = accelerator.device.type
    lines = [
        f"- Stage: `{args.stage}`, content loss `{args.content_loss}`"
        + (f", adversarial `{args.adversarial_loss}` x {args.adversarial_weight}" if args.stage == "srgan" else ""),
        f"- Data: {', '.join(f'`{Path(d).name or d}`' for d in args.dataset)}; {args.crop_size} px HR crops, "
        f"x{args.scale} {args.degradation} degradation; images skipped (each time they came up, all ranks): "
        f"{skipped[0]} smaller than a crop, {skipped[1]} corrupt",
        f"- Steps: {state.step} updates"
        + (f" (stopped early; --max-steps {args.max_steps})" if state.step < args.max_steps else "")
        + f" of batch {args.batch_size} x {accelerator.num_processes} process(es)"
        f" x {args.gradient_accumulation_steps} accumulation; Adam lr {args.lr} (beta1 {args.beta1})"
        + (f", EMA {args.ema_decay}" if args.ema else ""),
        f"- Hardware: {accelerator.num_processes} x {device}, mixed precision `{accelerator.mixed_precision}`",
        f"- Command: `accelerate launch train/train.py {' '.join(sys.argv[1:])}`",
    ]
    if val_metrics:
        lines.append(
            f"- Validation on `{args.val_dir}` at step {val_metrics['step']}: PSNR {val_metrics['psnr']:.2f} dB, "
            f"SSIM {val_metrics['ssim']:.4f}"
        )
    return "\n".join(lines)


def install_signal_handlers(accelerator: Accelerator):
    """SIGTERM/SIGINT ask the loop to checkpoint and exit at the end of the current step. The returned check
    agrees across ranks (a signal to any one rank stops all), so no rank waits alone in a collective."""
    requested = {"flag": False}

    def handler(signum, frame):
        requested["flag"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)

    def stop_requested() -> bool:
        if accelerator.num_processes == 1:
            return requested["flag"]
        flag = torch.tensor(float(requested["flag"]), device=accelerator.device)
        requested["flag"] = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
        return requested["flag"]

    return stop_requested


if __name__ == "__main__":
    main()
