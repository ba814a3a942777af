"""The setup both readers share (tf.data in pipeline.py, grain in grain_pipeline.py), so that the
two read the same splits in the same number of steps and fail with the same sentences.

A reader supplies only its example stream (`Reader`): what its dataset has, how many examples of
a split each process reads, and the host batches. Everything else is here: which splits are
read, this process's batch sizes, the steps of an epoch, the padding that gives every process
the same number of evaluation batches, and the checks of start_step and train_per_class.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

import jax
import ml_collections
from jax.experimental import multihost_utils

from jaxvision.data.batches import DatasetInfo, Pipelines, check_splits, local_batch, place_on_devices
from jaxvision.data.config import resolve_data_config
from jaxvision.data.errors import DataError

T = TypeVar("T")


def prepared_first(prepare: Callable[[], T]) -> T:
    """`prepare()`, on process 0 before the others, so that processes sharing a data dir never
    write it at once and the others find it written. The processes are jax's own: a test that
    plays one process of a larger run still runs in one."""
    first = jax.process_index() == 0
    if jax.process_count() > 1 and not first:
        multihost_utils.sync_global_devices("jaxvision.data: dataset prepared by process 0")
    prepared = prepare()
    if jax.process_count() > 1 and first:
        multihost_utils.sync_global_devices("jaxvision.data: dataset prepared by process 0")
    return prepared


@dataclasses.dataclass(frozen=True)
class Contents:
    """What a reader's dataset has."""

    name: str
    class_names: tuple[str, ...]
    multi_label: bool
    has_mask: bool
    splits: tuple[str, ...]
    source: str  # where the prepared dataset was read from


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every pipeline of one process shares: the data, this process's batches and seeds."""

    data: ml_collections.ConfigDict
    seed: int
    process_index: int
    process_count: int
    devices: tuple[jax.Device, ...]
    train_batch: int  # this process's examples per step
    eval_batch: int
    sizes: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # split -> examples of each process

    @property
    def steps_per_epoch(self) -> int:
        return min(self.sizes[self.data.train_split]) // self.train_batch if self.data.train_split else 0

    def eval_steps(self, split: str) -> int:
        return math.ceil(max(self.sizes[split]) / self.eval_batch)

    def padding(self, split: str) -> int:
        """Blank examples after this process's share of `split`: every process evaluates as many batches."""
        return self.eval_steps(split) * self.eval_batch - self.sizes[split][self.process_index]


class Reader(Protocol):
    """One reader's example stream; it keeps what `share_out` found for its batches."""

    contents: Contents

    def share_out(self, plan: Plan, split: str, train_per_class: int) -> list[int]:
        """How many examples of `split` each process reads: with train_per_class=k, of the k of each
        class that batches.per_class draws from the whole split with plan.seed."""

    def train_batches(self, plan: Plan, epoch: int, start_step: int, with_names: bool = False) -> Iterator[dict]:
        """This process's host batches of `epoch` from `start_step` on, with the device axis;
        `with_names` keeps each example's 'name'."""

    def eval_batches(self, plan: Plan, split: str, with_names: bool) -> Iterator[dict]:
        """This process's share of `split` once and then plan.padding(split) blank examples (valid 0)
        in host batches with the device axis; `with_names` keeps 'name' (b'' for padding)."""


def from_config(
    reader: Reader, config: ml_collections.ConfigDict, process_index: int, process_count: int, devices
) -> Pipelines:
    """The pipelines of `reader` for config.data, config.seed, config.batch_size,
    config.eval_batch_size (both global) and config.train_per_class."""
    return pipelines_of(
        reader,
        config.get("data"),
        seed=config.seed,
        batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        process_index=process_index,
        process_count=process_count,
        devices=devices,
        train_per_class=config.get("train_per_class", 0),
    )


def pipelines_of(
    reader: Reader,
    data: ml_collections.ConfigDict,
    *,
    seed: int,
    batch_size: int,
    eval_batch_size: int,
    process_index: int,
    process_count: int,
    devices: Sequence[jax.Device],
    train_per_class: int = 0,
) -> Pipelines:
    """The pipelines of `reader` for process `process_index` of `process_count`."""
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, {process_count}).")
    data, contents = resolve_data_config(data), reader.contents
    eval_splits = tuple(data.eval_splits) or tuple(s for s in contents.splits if s != data.train_split)
    read = tuple(dict.fromkeys(s for s in (data.train_split, *eval_splits) if s))  # train_split '': evaluation only
    check_splits(read, contents.splits, contents.name)
    plan = Plan(
        data=data,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
        devices=tuple(devices),
        train_batch=local_batch(batch_size, process_count, len(devices), "config.batch_size"),
        eval_batch=local_batch(eval_batch_size, process_count, len(devices), "config.eval_batch_size"),
    )
    per_class = train_per_class if data.train_split else 0
    if per_class and contents.multi_label:
        raise DataError(
            f"config.train_per_class={per_class} draws photos of each class, which {contents.name} (multi-label) "
            "does not have one of: set train_per_class=0."
        )
    sizes = {split: reader.share_out(plan, split, per_class if split == data.train_split else 0) for split in read}
    plan = dataclasses.replace(plan, sizes=sizes)
    if data.train_split and plan.steps_per_epoch == 0:
        raise DataError(
            f"{contents.name} {data.train_split!r} gives {min(sizes[data.train_split])} examples "
            f"to a process, fewer than one batch of {plan.train_batch}: lower config.batch_size."
        )
    return Pipelines(
        train=functools.partial(_train, reader, plan),
        steps_per_epoch=plan.steps_per_epoch,
        evals={split: functools.partial(_evaluate, reader, plan, split) for split in eval_splits},
        eval_steps={split: plan.eval_steps(split) for split in eval_splits},
        info=_info(contents, plan),
    )


def _info(contents: Contents, plan: Plan) -> DatasetInfo:
    data = plan.data
    return DatasetInfo(
        name=contents.name,
        num_classes=len(contents.class_names),
        class_names=contents.class_names,
        image_shape=(data.image_size, data.image_size, 1 if data.grayscale else 3),
        num_examples={split: sum(n) for split, n in plan.sizes.items()},
        multi_label=contents.multi_label,
        has_mask=contents.has_mask,
        source=contents.source,
    )


def _train(reader: Reader, plan: Plan, epoch: int, start_step: int = 0, with_names: bool = False) -> Iterator[dict]:
    """`epoch`'s batches from `start_step`; `with_names` adds each example's 'name' (bytes) and
    leaves the batches on the host, as for evaluation."""
    spe = plan.steps_per_epoch
    if not plan.data.train_split:
        raise ValueError("These pipelines were built for evaluation only (config.data.train_split is '').")
    if not 0 <= start_step <= spe:
        raise ValueError(f"start_step {start_step} is outside the epoch's {spe} steps.")
    found = reader.train_batches(plan, epoch, start_step, with_names)
    return found if with_names else place_on_devices(found, plan.data, plan.devices)


def _evaluate(reader: Reader, plan: Plan, split: str, with_names: bool = False) -> Iterator[dict]:
    """Every example of `split` once, padded to the same number of batches on every process;
    `with_names` adds each one's file name or id as 'name' (bytes; padding b'') and leaves the
    batches on the host as numpy."""
    found = reader.eval_batches(plan, split, with_names)
    return found if with_names else place_on_devices(found, plan.data, plan.devices)
