"""Training data: a streamed `datasets.IterableDataset` of images -> random HR crops -> batches of HR crops.

The paper trains on random 96x96 HR crops and their bicubic x4 downsamples. Here the corpus is always streamed, so
a Hub dataset id and a folder of local files take the same path:

    images (any source) --split by rank, then by DataLoader worker--> decode -> random crops + flips/rotations
        --collate--> HR batch in [0, 1] --on the training device--> LR (`degradations.TrainingDegradation`)

Sharding happens exactly once: `split_dataset_by_node` gives each rank its shards, DataLoader workers split those,
and the DataLoader is *not* passed through `accelerator.prepare` (which would shard a second time).
"""

from __future__ import annotations

import fnmatch
import io
import logging
import random
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from srgan_hub.imageio import list_images

logger = logging.getLogger(__name__)


def _read_files(paths: list[list[str]]):
    """Generator behind a local-folder dataset: each element of `paths` is one shard (a group of files)."""
    for group in paths:
        for path in group:
            yield {"image": {"path": path, "bytes": Path(path).read_bytes()}}


def load_image_stream(
    sources: str | list[str],
    image_column: str = "image",
    num_shards: int = 64,
    split: str = "train",
    exclude: tuple[str, ...] = (),
):
    """A streamed IterableDataset with one column, "image", of undecoded images ({"bytes", "path"} dicts).

    `sources`: one or more folders of images, or one folder / glob of parquet or webdataset (.tar) files, or one
    Hub dataset id. Image folders become `num_shards` shards (files dealt out round-robin) so that ranks and
    workers can split them; files whose names match an `exclude` pattern are left out (e.g. images kept for
    testing). Images stay undecoded so a corrupt file is skipped by the crop stage instead of
    stopping the stream.
    """
    from datasets import Features, IterableDataset, load_dataset
    from datasets import Image as ImageFeature

    sources = [sources] if isinstance(sources, str) else list(sources)
    image_files = [
        str(p)
        for source in sources
        if Path(source).is_dir()
        for p in list_images(source)
        if not any(fnmatch.fnmatch(p.name, pattern) for pattern in exclude)
    ]
    if image_files:
        num_shards = max(1, min(num_shards, len(image_files)))
        groups = [image_files[i::num_shards] for i in range(num_shards)]
        features = Features({"image": ImageFeature(decode=False)})
        # Already undecoded: no cast_column here (it fails on generator-built datasets).
        return IterableDataset.from_generator(_read_files, gen_kwargs={"paths": groups}, features=features)
    if len(sources) > 1:
        raise ValueError(f"several sources are only supported as folders of images, got {sources}")
    source = sources[0]
    path = Path(source)
    if path.is_dir() or any(ch in source for ch in "*?"):
        files = [str(p) for p in sorted(path.rglob("*"))] if path.is_dir() else sorted(map(str, Path().glob(source)))
        parquet = [f for f in files if f.endswith(".parquet")]
        tars = [f for f in files if f.endswith(".tar")]
        if not parquet and not tars:
            raise FileNotFoundError(f"{source} holds no images, parquet files or webdataset .tar shards")
        builder = "parquet" if parquet else "webdataset"
        dataset = load_dataset(builder, data_files={split: parquet or tars}, split=split, streaming=True)
    else:
        dataset = load_dataset(source, split=split, streaming=True)
    if dataset.features is not None and image_column not in dataset.features:
        raise KeyError(f"{source} has no column {image_column!r}; columns: {list(dataset.features)}")
    dataset = dataset.select_columns([image_column]).cast_column(image_column, ImageFeature(decode=False))
    return dataset if image_column == "image" else dataset.rename_column(image_column, "image")


def decode_rgb(image: dict | Image.Image) -> Image.Image:
    """Decode a {"bytes", "path"} record (or pass a PIL image through) as RGB."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    data = image.get("bytes") or Path(image["path"]).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.convert("RGB")


def random_crops(image: Image.Image, crop_size: int, count: int, rng: random.Random) -> list[np.ndarray]:
    """`count` random crop_size^2 crops, each with a random horizontal flip and 90-degree rotation (the 8
    symmetries of the square), as H x W x 3 uint8 arrays."""
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    crops = []
    for _ in range(count):
        top, left = rng.randrange(height - crop_size + 1), rng.randrange(width - crop_size + 1)
        crop = pixels[top : top + crop_size, left : left + crop_size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.rot90(crop, rng.randrange(4))
        crops.append(np.ascontiguousarray(crop))
    return crops


@dataclass
class CropStats:
    """Images skipped since the last crop was handed out (they travel with the batches out of the workers)."""

    too_small: int = 0
    corrupt: int = 0


class RandomCropStream(torch.utils.data.IterableDataset):
    """HR crops from a streamed image dataset, with a shuffle buffer, and counts of skipped images.

    Yields {"hr": 3 x crop x crop uint8 tensor, "too_small": int, "corrupt": int}.
    Randomness is seeded by (seed, epoch, rank, worker), so a resumed run sees the same stream.
    """

    def __init__(
        self,
        images,
        crop_size: int = 96,
        crops_per_image: int = 4,
        shuffle_buffer: int = 256,
        seed: int = 0,
        rank: int = 0,
    ):
        super().__init__()
        self.images, self.crop_size, self.crops_per_image = images, crop_size, crops_per_image
        self.shuffle_buffer, self.seed, self.rank = shuffle_buffer, seed, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.images.set_epoch(epoch)

    def _crops(self, rng: random.Random):
        stats = CropStats()
        for example in self.images:
            record = example["image"]
            name = record.get("path") if isinstance(record, dict) else None
            try:
                image = decode_rgb(record)
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
                stats.corrupt += 1
                logger.warning("skipping corrupt image %s: %s", name or "<bytes>", error)
                continue
            if min(image.size) < self.crop_size:
                stats.too_small += 1
                logger.info("skipping %s: %s is smaller than the %d px crop", name, image.size, self.crop_size)
                continue
            for crop in random_crops(image, self.crop_size, self.crops_per_image, rng):
                yield crop, stats
                stats = CropStats()

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        worker_id = worker.id if worker else 0
        rng = random.Random(f"{self.seed}-{self.epoch}-{self.rank}-{worker_id}")
        buffer = []
        for crop, stats in self._crops(rng):
            item = {
                "hr": torch.from_numpy(crop).permute(2, 0, 1),
                "too_small": stats.too_small,
                "corrupt": stats.corrupt,
            }
            if len(buffer) < self.shuffle_buffer:
                buffer.append(item)
                continue
            index = rng.randrange(len(buffer))
            yield buffer[index]
            buffer[index] = item
        rng.shuffle(buffer)
        yield from buffer


def stack_crops(items: list[dict]) -> dict:
    """Collate function: the HR crops as one float batch in [0, 1], and how many images the crop stage skipped.
    LR is made from the batch on the training device (`degradations.TrainingDegradation`)."""
    return {
        "hr": torch.stack([item["hr"] for item in items]).float().div_(255),
        "too_small": sum(i["too_small"] for i in items),
        "corrupt": sum(i["corrupt"] for i in items),
    }


def make_dataloader(
    source: str | list[str],
    *,
    batch_size: int,
    crop_size: int,
    scale: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 2,
    crops_per_image: int = 4,
    shuffle_buffer: int = 256,
    image_column: str = "image",
    exclude: tuple[str, ...] = (),
    seed: int = 0,
) -> torch.utils.data.DataLoader:
    """The training DataLoader for one rank: batches of HR crops from its share of the stream."""
    if crop_size % scale:
        raise ValueError(f"--crop-size {crop_size} must be a multiple of --scale {scale}")
    images = rank_stream(source, rank, world_size, num_workers, image_column, seed, exclude)
    crops = RandomCropStream(images, crop_size, crops_per_image, shuffle_buffer, seed, rank)
    return StopSignalSafeDataLoader(
        crops,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=stack_crops,
        drop_last=True,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class StopSignalSafeDataLoader(torch.utils.data.DataLoader):
    """A DataLoader whose workers ignore Ctrl-C and SIGTERM. Those reach the whole process group (a scheduler's
    preemption notice); the training process decides when to stop, after saving a checkpoint, and shuts its workers
    down itself. A worker dying of the signal instead would end training with an error.

    The signals are held back while the workers start: a worker installs PyTorch's own SIGTERM handler before it
    runs `worker_init_fn`, and one that arrived in between would still kill it. Held back in the parent, they are
    delivered there once the workers are running.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, worker_init_fn=_ignore_stop_signals, **kwargs)

    def __iter__(self):
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return super().__iter__()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def _ignore_stop_signals(worker_id: int) -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # any held back are now discarded


def rank_stream(
    source: str | list[str],
    rank: int,
    world_size: int,
    num_workers: int,
    image_column: str = "image",
    seed: int = 0,
    exclude: tuple[str, ...] = (),
):
    """This rank's share of the image stream: whole shards, which its DataLoader workers split further.

    A folder is cut into world_size x workers x 8 shards, so `split_dataset_by_node` hands out whole shards (with
    a count it cannot divide, it would make every rank read every file and keep one in world_size)."""
    from datasets.distributed import split_dataset_by_node

    images = load_image_stream(source, image_column, world_size * max(1, num_workers) * 8, exclude=exclude)
    images = images.shuffle(seed=seed, buffer_size=16)  # new shard order (and a little mixing) every epoch
    return split_dataset_by_node(images, rank=rank, world_size=world_size)
