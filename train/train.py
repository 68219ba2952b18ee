"""Train SRResNet (pixel loss) and SRGAN (perceptual loss) with Accelerate on a streamed image corpus.

    # stage 1: SRResNet, pixel MSE (paper: 1e6 updates at lr 1e-4)
    accelerate launch train/train.py --stage srresnet --dataset DATA --output-dir runs/srresnet-x4
    # stage 2: SRGAN from the SRResNet (paper: 1e5 updates at 1e-4, then 1e5 at 1e-5)
    accelerate launch train/train.py --stage srgan --init-from runs/srresnet-x4 --dataset DATA \
        --content-loss vgg54 --vgg-weights vgg19.safetensors --output-dir runs/srgan-x4

One script for one CPU, one GPU, many GPUs and many nodes: Accelerate wraps the models in DDP and runs them under
fp16/bf16 autocast (`--mixed_precision`); every rank streams its own shards of the data. The loop reads like the
paper's algorithm: super-resolve a batch of LR crops; update G on the content loss plus 1e-3 x the adversarial
loss; update D on real HR against the generated SR, from the same verdict of D.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.optim.lr_scheduler import MultiStepLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from srgan_hub import SRDiscriminator, SRGenerator
from srgan_hub.data import make_dataloader
from srgan_hub.degradations import DEGRADATIONS, TrainingDegradation
from srgan_hub.evaluate import load_folder
from srgan_hub.losses import CONTENT_LOSSES, ContentLoss, discriminator_loss, generator_adversarial_loss, pixel_mse
from srgan_hub.metrics import load_lpips
from srgan_hub.models import VGGFeatureDiscriminator
from srgan_hub.training import (
    TrainState,
    check_ranks_agree,
    discriminator_verdict,
    endless_batches,
    export,
    freeze_batchnorm,
    gan_health,
    lr_decay_step,
    resolve_resume,
    roll_together,
    run_validation,
    save_checkpoint,
    stop_on_signals,
)

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
    p.add_argument(
        "--exclude", nargs="+", default=(), metavar="PATTERN", help="leave out image files matching these names"
    )
    p.add_argument("--output-dir", required=True)
    p.add_argument(
        "--max-steps", type=int, default=1_000_000, help="optimizer updates (paper: 1e6 srresnet, 2e5 srgan)"
    )
    p.add_argument("--batch-size", type=int, default=16, help="per process (paper: 16)")
    p.add_argument("--crop-size", type=int, default=96, help="HR crop side in pixels (paper: 96)")
    p.add_argument("--scale", type=int, default=4, choices=[2, 4, 8])
    p.add_argument(
        "--degradation",
        choices=DEGRADATIONS,
        default="bicubic",
        help="how LR is made: MATLAB bicubic (the paper), Gaussian blur + decimation, or Real-ESRGAN's second-order "
        "real-world model (blur, resize, noise, JPEG, twice), on whole batches on the training device",
    )
    p.add_argument("--blur-sigma", type=float, default=1.5, help="Gaussian degradation's sigma, HR pixels")
    p.add_argument(
        "--clean-prob",
        type=float,
        default=0.0,
        help="with --degradation realworld: the share of crops given the clean bicubic LR instead (0: Real-ESRGAN)",
    )
    p.add_argument("--crops-per-image", type=int, default=4, help="crops cut from each decoded image")
    p.add_argument("--shuffle-buffer", type=int, default=256, help="crops held for shuffling, per worker")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers per process")
    # models
    p.add_argument("--num-blocks", type=int, default=16)
    p.add_argument("--num-channels", type=int, default=64)
    p.add_argument("--upsampler", choices=["pixelshuffle", "transpose"], default="pixelshuffle")
    p.add_argument("--block", choices=["residual", "inception"], default="residual")
    p.add_argument("--init-from", help="generator to start from (folder or Hub id); required for --stage srgan")
    p.add_argument(
        "--discriminator",
        choices=["paper", "vgg"],
        default="paper",
        help="paper: the SRGAN discriminator on images; vgg: small spectral-norm heads on the VGG19 features the "
        "content loss computes (Projected GAN; not in the paper; needs a VGG content loss)",
    )
    p.add_argument("--init-discriminator-from", help="discriminator to start from (folder or Hub id)")
    p.add_argument(
        "--base-model", help="srgan: the Hub id recorded as the generator's base_model (default: --init-from)"
    )
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
    p.add_argument("--content-loss", choices=CONTENT_LOSSES, default="mse")
    p.add_argument("--vgg-weights", help="VGG19 ImageNet weights for a VGG content loss (see srgan_hub.losses)")
    p.add_argument(
        "--phase-weight",
        type=float,
        default=0.0,
        help="weight of the squared mean of SR - HR at each sub-pixel phase and colour channel, over the batch's "
        "crops less two LR pixels at each edge (a pattern that repeats every --scale pixels, or a colour cast); "
        "not in the paper",
    )
    p.add_argument("--adversarial-weight", type=float, default=1e-3)
    p.add_argument(
        "--d-random-shift",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="roll D's input, and the images whose VGG features the content loss compares, by a random offset each "
        "step (not in the paper; see roll_randomly, roll_together)",
    )
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep an EMA of G and export it (default: on for srgan, off for srresnet)",
    )
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument(
        "--freeze-batchnorm",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="the generator's BatchNorm layers use their running statistics (scale and shift still learn)",
    )
    # bookkeeping
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--resume", help="'latest' or a checkpoint folder")
    p.add_argument("--val-dir", help="HR images for validation (e.g. Set5)")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument(
        "--lpips-weights", metavar="DIR", help="LPIPS-alex weights folder: validation also reports LPIPS-alex"
    )
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--push-to-hub", metavar="ORG/NAME", help="push the exported models to this Hub repo")
    args = p.parse_args(argv)
    if args.stage == "srgan" and not args.init_from:
        p.error("--stage srgan starts from a trained SRResNet: pass --init-from FOLDER_OR_ID")
    if args.discriminator == "vgg" and args.content_loss == "mse":
        p.error("--discriminator vgg judges the VGG features of a VGG content loss: pass --content-loss vgg54 ...")
    if args.content_loss != "mse" and not args.vgg_weights:
        p.error(f"--content-loss {args.content_loss} needs --vgg-weights FILE (see srgan_hub.losses.load_vgg19)")
    if args.ema is None:
        args.ema = args.stage == "srgan"
    if args.lr_decay_at is None:
        args.lr_decay_at = 0.5 if args.stage == "srgan" else 1.0
    args.d_lr = args.d_lr or args.lr
    return args


def build_generator(args) -> SRGenerator:
    """The generator in training mode: new, or --init-from a trained one (for SRGAN, recording it as base_model)."""
    if not args.init_from:
        generator = SRGenerator(args.scale, args.num_channels, args.num_blocks, args.upsampler, args.block)
    elif args.stage == "srgan":
        # The GAN generator records the PSNR-oriented one it starts from: upscale(detail=...) blends the two.
        start = SRGenerator.from_pretrained(args.init_from)
        generator = SRGenerator(**start.architecture(), base_model=args.base_model or args.init_from)
        generator.load_state_dict(start.state_dict())
    else:
        generator = SRGenerator.from_pretrained(args.init_from)
    return freeze_batchnorm(generator.train()) if args.freeze_batchnorm else generator.train()


def build_discriminator(args) -> SRDiscriminator | VGGFeatureDiscriminator:
    """The discriminator in training mode: new, or --init-discriminator-from a saved one."""
    kind = VGGFeatureDiscriminator if args.discriminator == "vgg" else SRDiscriminator
    return (kind.from_pretrained(args.init_discriminator_from) if args.init_discriminator_from else kind()).train()


def memory_format(args) -> torch.memory_format:
    return torch.channels_last if args.channels_last else torch.contiguous_format


def prepare_with_adam(accelerator: Accelerator, model: torch.nn.Module, lr: float, args) -> tuple:
    """`model` with its Adam optimiser, both prepared by Accelerate (DDP, mixed precision), and its lr schedule
    (not prepared: Accelerate would step it once per process)."""
    optimizer, scheduler = adam(model.to(memory_format=memory_format(args)), lr, args)
    return *accelerator.prepare(model, optimizer), scheduler


def adam(model: torch.nn.Module, lr: float, args) -> tuple[torch.optim.Adam, MultiStepLR]:
    """Adam (beta1 0.9) with the paper's schedule: lr divided by 10 for the last part of training."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(args.beta1, 0.999))
    return optimizer, MultiStepLR(optimizer, milestones=[lr_decay_step(args.lr_decay_at, args.max_steps)], gamma=0.1)


def make_accelerator(args) -> Accelerator:
    """Accelerate (DDP, mixed precision, TensorBoard), per-rank logging, seeds, and SIGTERM/SIGINT handlers."""
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with="tensorboard",
        project_dir=args.output_dir,
    )
    logging.basicConfig(
        level=logging.INFO if accelerator.is_main_process else logging.WARNING,
        format=f"%(asctime)s [rank {accelerator.process_index}] %(levelname)s %(message)s",
    )
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file is too chatty
    set_seed(args.seed, device_specific=True)
    accelerator.init_trackers("tensorboard", config={k: str(v) for k, v in vars(args).items()})
    stop_on_signals(accelerator)
    return accelerator


def training_data(args, accelerator: Accelerator) -> torch.utils.data.DataLoader:
    """This rank's stream of HR batches. Each rank streams its own shards, so the loader is deliberately not
    passed to accelerator.prepare (which would shard it a second time)."""
    return make_dataloader(
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
        exclude=tuple(args.exclude),
        seed=args.seed,
    )


def validation_pairs(args, accelerator: Accelerator, degrade: TrainingDegradation) -> list | None:
    """The main process's --val-dir pairs: bicubic LR, or for a real-world run a fixed degraded set."""
    if not (args.val_dir and accelerator.is_main_process):
        return None
    return load_folder(args.val_dir, args.scale, realworld_seed=args.seed if degrade.kind == "realworld" else None)


def validation_lpips(args, accelerator: Accelerator):
    """LPIPS-alex for the main process's validation, with --lpips-weights."""
    if not (args.lpips_weights and args.val_dir and accelerator.is_main_process):
        return None
    return load_lpips(args.lpips_weights).to(accelerator.device)


def register_and_resume(
    accelerator: Accelerator, args, schedulers: list, ema
) -> tuple[TrainState, TrainingDegradation]:
    """A new train state and the degradation that makes LR on this rank; `save_state` keeps them, the schedulers
    and the EMA (when in use) with the models and optimisers. Then all are restored from --resume (`latest`: the
    newest complete checkpoint, if any)."""
    state = TrainState()
    seed = args.seed + accelerator.process_index
    degrade = TrainingDegradation(
        args.degradation, args.scale, accelerator.device, seed, args.blur_sigma, args.clean_prob
    )
    for obj in [*schedulers, state, *([ema] if args.ema else []), degrade]:
        accelerator.register_for_checkpointing(obj)
    if args.resume and (checkpoint := resolve_resume(args.resume, Path(args.output_dir))) is not None:
        accelerator.load_state(str(checkpoint))
        logger.info("resumed from %s at step %d", checkpoint, state.step)
    return state, degrade


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    accelerator = make_accelerator(args)
    gan = args.stage == "srgan"

    # Models, optimisers and losses. A VGG-feature D judges the features the content loss computes anyway.
    generator, g_optimizer, g_scheduler = prepare_with_adam(accelerator, build_generator(args), args.lr, args)
    optimizers, schedulers, judged_layers = [g_optimizer], [g_scheduler], ()
    if gan:
        discriminator, d_optimizer, d_scheduler = prepare_with_adam(
            accelerator, build_discriminator(args), args.d_lr, args
        )
        optimizers, schedulers = [g_optimizer, d_optimizer], [g_scheduler, d_scheduler]
        judged_layers = getattr(accelerator.unwrap_model(discriminator), "taps", ())
    content_loss = ContentLoss(args.content_loss, args.vgg_weights, args.phase_weight, args.scale, judged_layers).to(
        accelerator.device
    )
    raw_generator = accelerator.unwrap_model(generator)
    # The EMA averages BatchNorm's running statistics too (use_buffers); it is the generator users get.
    ema = AveragedModel(raw_generator, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
    exported = ema.module if args.ema else raw_generator
    state, degrade = register_and_resume(accelerator, args, schedulers, ema)
    layout = memory_format(args)  # of the batches, as of the models (prepare_with_adam)
    batches = endless_batches(training_data(args, accelerator), state, accelerator.device, layout)
    book = Bookkeeping(args, accelerator, state, degrade, exported, raw_generator)
    while state.step < args.max_steps and not book.stopping:
        hr = next(batches)
        lr = degrade(hr).contiguous(memory_format=layout)  # LR made on this device, a whole batch at a time
        with accelerator.accumulate(*([generator, discriminator] if gan else [generator])):
            # 1. Super-resolve the LR crops.
            sr = generator(lr)
            # 2. The losses. SRGAN: D judges HR and SR once, and both players learn from that one verdict.
            with accelerator.autocast():  # the VGG loss is not a prepared model: autocast it here
                # VGG features of SR and HR, computed once (with --d-random-shift, of both rolled by one offset)
                features = content_loss.features(*(roll_together(sr, hr) if args.d_random_shift else (sr, hr)))
                losses = {"content": content_loss(sr, hr, features)}
            if gan:
                real, fake = discriminator_verdict(discriminator, hr, sr, features, args.d_random_shift)
                losses["adversarial"] = generator_adversarial_loss(fake)
                losses["total"] = losses["content"] + args.adversarial_weight * losses["adversarial"]
                losses["d"] = discriminator_loss(real, fake)
            # 3. Update G: content loss + 1e-3 x adversarial loss -log D(SR). D's graph is kept for step 4.
            g_loss = losses.get("total", losses["content"])
            accelerator.backward(g_loss, inputs=list(generator.parameters()), retain_graph=gan)
            clip_and_step(accelerator, generator, g_optimizer, args.max_grad_norm)
            # 4. Update D: real HR against SR, its gradient taken for D's weights only (as if SR were detached).
            if gan:
                accelerator.backward(losses["d"], inputs=list(discriminator.parameters()))
                clip_and_step(accelerator, discriminator, d_optimizer, args.max_grad_norm)
        if not accelerator.sync_gradients:
            continue  # still accumulating
        # 5. Advance the lr schedules and the EMA, except after a step that fp16's GradScaler skipped.
        step_schedules(optimizers, schedulers)
        if args.ema and not g_optimizer.step_was_skipped:
            ema.update_parameters(raw_generator)
        state.step += 1
        # 6. Log, validate, checkpoint (the last step always); stop at --max-steps or on SIGTERM/SIGINT (any rank's).
        book.after_step(losses, sr, hr, (real, fake) if gan else None, g_scheduler)
    # Stopped early or not, the output folder holds a usable model; its card says how far training got.
    book.export(generator, discriminator if gan else None)


def step_schedules(optimizers: list, schedulers: list) -> None:
    """Advance each lr schedule, except after a step that fp16's GradScaler skipped."""
    for optimizer, scheduler in zip(optimizers, schedulers, strict=True):
        if not optimizer.step_was_skipped:
            scheduler.step()


class Bookkeeping:
    """Step 6 of the loop: the progress bar, logging every --log-every updates, validation every --val-every (the
    generator users get, and the raw one it averages), checkpoints every --checkpoint-every and at the last step,
    a stop request on any rank noticed; and the export at the end."""

    def __init__(self, args, accelerator: Accelerator, state: TrainState, degrade, exported, raw_generator):
        self.args, self.accelerator, self.state = args, accelerator, state
        self.progress = tqdm(
            total=args.max_steps, initial=state.step, disable=not accelerator.is_main_process, desc=args.stage
        )
        self.exported, self.raw_generator = exported, raw_generator
        self.val_pairs = validation_pairs(args, accelerator, degrade)
        self.val_lpips = validation_lpips(args, accelerator)
        self.meter, self.val_metrics, self.stopping = Throughput(), {}, False

    def after_step(self, losses: dict, sr, hr, logits, scheduler) -> None:
        args, accelerator, state = self.args, self.accelerator, self.state
        self.meter.update(self.progress, args.batch_size * args.gradient_accumulation_steps * accelerator.num_processes)
        if state.step % args.log_every == 0:
            log_step(accelerator, self.progress, self.meter, losses, sr, hr, logits, state, scheduler)
        self.stopping = accelerator.check_trigger()
        last = self.stopping or state.step >= args.max_steps
        if args.val_dir and (state.step % args.val_every == 0 or last and not self.stopping):
            self.val_metrics = run_validation(
                accelerator, self.exported, self.raw_generator, self.val_pairs, args.scale, state.step, self.val_lpips
            )
        if state.step % args.checkpoint_every == 0 or last:
            save_checkpoint(accelerator, Path(args.output_dir), state.step, args.keep_checkpoints, self.exported)

    def export(self, generator, discriminator) -> None:
        """The exported model (the EMA, or the raw generator) and D, with a card saying how far training got."""
        self.progress.close()
        if self.stopping:
            logger.warning("stop requested: checkpoint saved at step %d, exporting and exiting", self.state.step)
        check_ranks_agree(self.accelerator, generator)
        export(self.accelerator, self.args, self.exported, discriminator, self.state, self.val_metrics)
        self.accelerator.end_training()


def clip_and_step(accelerator: Accelerator, model, optimizer, max_grad_norm: float) -> None:
    if max_grad_norm and accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


class Throughput:
    """Samples per second since the last log line."""

    def __init__(self):
        self.since, self.samples = time.perf_counter(), 0

    def update(self, progress: tqdm, samples: int) -> None:
        progress.update(1)
        self.samples += samples

    def read(self) -> float:
        now = time.perf_counter()
        rate, self.since, self.samples = self.samples / (now - self.since), now, 0
        return rate


def log_step(accelerator, progress, meter, losses, sr, hr, logits, state: TrainState, scheduler) -> None:
    """Losses, lr, throughput, skipped images and (SRGAN) D's verdicts to TensorBoard and the progress bar."""
    logs = {"loss/g_total": losses.get("total", losses["content"]).item(), "loss/content": losses["content"].item()}
    logs |= {"loss/pixel_mse": pixel_mse(sr.detach().float(), hr).item(), "lr": scheduler.get_last_lr()[0]}
    logs |= {"data/skipped_too_small": state.too_small, "data/skipped_corrupt": state.corrupt}
    logs["samples_per_s"] = meter.read()
    postfix = {"loss": f"{logs['loss/g_total']:.4f}", "sps": f"{logs['samples_per_s']:.1f}"}
    if logits is not None:
        logs |= gan_health(losses["adversarial"], losses["d"], *logits)
        postfix |= {"D(real)": f"{logs['gan/d_real']:.2f}", "D(fake)": f"{logs['gan/d_fake']:.2f}"}
    accelerator.log(logs, step=state.step)
    progress.set_postfix(postfix)
    if not math.isfinite(logs["loss/g_total"]):
        logger.warning("step %d: generator loss is %s", state.step, logs["loss/g_total"])


if __name__ == "__main__":
    main()
