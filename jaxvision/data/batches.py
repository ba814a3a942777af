"""What every reader (tf.data in pipeline.py, grain in grain_pipeline.py) hands the engine, and the
rules they share: per-process batch sizes, per-epoch seeds, and placing batches on devices
(plan.py lays both readers' setup out with them).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import jax
import ml_collections
import numpy as np
from flax import jax_utils

ALL = "all"  # the split name that reads every split of a dataset (e.g. to score a whole folder)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a task need to know about the data."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (H, W, C) of the batches' images
    num_examples: dict[str, int]  # examples of each split read (all processes together)
    multi_label: bool  # 'label' is multi-hot (else one-hot)
    has_mask: bool  # batches carry a foreground 'mask'
    source: str = ""  # the prepared tfds dataset read ('name/config/version' in its data dir)


@dataclasses.dataclass(frozen=True)
class Pipelines:
    """train(epoch, start_step=0) -> batches of this process; evals[split]() -> padded batches."""

    train: Callable[..., Iterator[dict]]
    steps_per_epoch: int
    evals: dict[str, Callable[[], Iterator[dict]]]
    eval_steps: dict[str, int]
    info: DatasetInfo


def this_process(
    process_index: int | None = None, process_count: int | None = None, devices=None
) -> tuple[int, int, tuple]:
    """The process's index, the number of processes and its devices: jax's, unless given (tests
    play one process of a larger run)."""
    return (
        jax.process_index() if process_index is None else process_index,
        jax.process_count() if process_count is None else process_count,
        tuple(jax.local_devices() if devices is None else devices),
    )


def local_batch(global_batch: int, process_count: int, num_devices: int, name: str) -> int:
    if global_batch % (process_count * num_devices):
        raise ValueError(
            f"{name}={global_batch} is not divisible by the {process_count} process(es) x "
            f"{num_devices} device(s) per process: use a multiple of "
            f"{process_count * num_devices}."
        )
    return global_batch // process_count


def epoch_seeds(seed: int, epoch: int, process_index: int) -> tuple[int, int]:
    """(shuffle seed, augmentation seed) of one process in one epoch."""
    state = np.random.SeedSequence([seed % 2**32, epoch, process_index]).generate_state(2)
    return int(state[0]), int(state[1])


def split_names(split: str) -> list[str]:
    return [part.split("[")[0].strip() for part in split.split("+")]


def expand(split: str, splits: tuple[str, ...]) -> str:
    """The tfds split string of `split`: 'all' is every split of the dataset."""
    return "+".join(splits) if split == ALL else split


def check_splits(read, splits: tuple[str, ...], name: str) -> None:
    for split in read:
        unknown = [s for s in split_names(expand(split, splits)) if s not in splits]
        if unknown:
            raise ValueError(
                f"Split {split!r} of config.data names {unknown[0]!r}, which {name} "
                f"does not have: its splits are {', '.join(splits)}."
            )


def place_on_devices(batches: Iterator[dict], data: ml_collections.ConfigDict, devices) -> Iterator[dict]:
    """Moves each batch's device slices onto `devices` ahead of use (`config.data.prefetch_to_device`
    batches in flight; 0 leaves them on the host for pmap to copy)."""
    if data.prefetch_to_device == 0:
        return batches
    return jax_utils.prefetch_to_device(batches, data.prefetch_to_device, devices=list(devices))


def real_examples(batch: dict) -> dict[str, np.ndarray]:
    """One batch of an evaluation pipeline as host arrays without its device axis and without the
    padding of its last batch ('valid' is dropped with it)."""
    flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in batch.items()}
    real = flat.pop("valid") > 0
    return {k: v[real] for k, v in flat.items()}


def _ranks_in_class(labels: np.ndarray, seed: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded order of the examples and, along it, each one's rank among those of its class."""
    order = np.random.default_rng(np.random.SeedSequence([seed % 2**32, salt])).permutation(len(labels))
    classes = np.asarray(labels)[order]
    classes = classes.argmax(-1) if classes.ndim > 1 else classes
    rank = np.zeros(len(order), np.int64)
    seen: dict[int, int] = {}
    for i, c in enumerate(classes.tolist()):
        rank[i] = seen.get(c, 0)
        seen[c] = rank[i] + 1
    return order, rank


def per_class(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Sorted indices of `k` examples of each class (all of a class with fewer), drawn in one
    seeded order so that each k's draw holds every smaller k's."""
    order, rank = _ranks_in_class(labels, seed, 0x5CA1E)
    return np.sort(order[rank < k])


def folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Each example's fold, 0 to k - 1: the examples of each class dealt in turn to the folds in
    one seeded order, so that every fold holds a k-th of every class (give or take one)."""
    order, rank = _ranks_in_class(labels, seed, 0xF01D)
    fold = np.empty(len(order), np.int64)
    fold[order] = rank % k
    return fold
