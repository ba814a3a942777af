"""tf.data pipelines: this process's share of each split, preprocessed, batched per device.

Training order: the share is shuffled with a seed drawn from (config.seed, epoch, process), and
each example's random crop and flip use a seed drawn from the same triple and the example's
position in the epoch, so `train(epoch, start_step)` yields exactly the batches that
`train(epoch)` yields from that step on. Every process runs the same number of steps: the
remainder of the smallest share is dropped in training, and evaluation pads every share to
the same number of batches with examples whose 'valid' is 0.

`train_per_class=k` trains on k examples of each class, drawn once from the seed out of the
whole training split (batches.per_class) and then shared out among the processes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Iterator, Sequence

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from jax.experimental import multihost_utils

from jaxvision.data.batches import (
    DatasetInfo,
    Pipelines,
    check_splits,
    epoch_seeds,
    expand,
    local_batch,
    per_class,
    place_on_devices,
    this_process,
)
from jaxvision.data.config import resolve_data_config
from jaxvision.data.errors import DataError
from jaxvision.data.preprocess import find_bad_example, preprocessor
from jaxvision.data.sources import Source, make_source, prepare

# TensorFlow only feeds data: it must never take a GPU (or its memory) from JAX.
try:
    tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # TensorFlow was initialised before this import and keeps its devices
    if tf.config.list_physical_devices("GPU"):
        warnings.warn(
            "TensorFlow was initialised before jaxvision.data was imported and may hold GPU "
            "memory: import jaxvision.data before using TensorFlow.",
            stacklevel=2,
        )

AUTOTUNE = tf.data.AUTOTUNE  # with the autotuner off: tf.data's default parallelism and buffers
# tf.data's autotuner held back the last batch of many epochs by ~2 s with the host's cores busy
# training, at no gain in images/s here: benchmarks/host_loop.py.
TF_DATA_AUTOTUNE = False


def make_pipelines(
    config: ml_collections.ConfigDict,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> Pipelines:
    """Prepares `config.data`'s dataset (once) and returns its pipelines for this process.

    In a multi-process run every process calls it; process 0 prepares the data first.

    Reads config.data, config.seed, config.batch_size and config.eval_batch_size (both global).
    process_index / process_count / devices default to jax's; tests pass others to play one
    process of a larger run.
    """
    data = resolve_data_config(config.get("data"))
    source = make_source(data)
    if jax.process_count() > 1:
        # Process 0 prepares first, so that processes sharing a data dir never write it at once;
        # the others then build their source afresh to see what it wrote.
        if jax.process_index() == 0:
            prepare(source)
        multihost_utils.sync_global_devices("jaxvision.data: dataset prepared by process 0")
        source = make_source(data)
    prepare(source)
    process_index, process_count, devices = this_process(process_index, process_count, devices)
    return build_pipelines(
        source,
        data,
        seed=config.seed,
        batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        process_index=process_index,
        process_count=process_count,
        devices=list(devices),
        train_per_class=config.get("train_per_class", 0),
    )


def add_device_axis(ds: tf.data.Dataset, local_batch: int, num_devices: int) -> tf.data.Dataset:
    """Batches of `local_batch` examples shaped `[num_devices, local_batch // num_devices, ...]`:
    the leading axis is the one `jax.pmap` maps over (the arrays stay on the host)."""
    per_device = local_batch // num_devices

    def split(batch):
        return {k: tf.reshape(v, (num_devices, per_device, *v.shape[1:])) for k, v in batch.items()}

    return ds.batch(local_batch, drop_remainder=True).map(split).prefetch(AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every pipeline of one process shares: the data, this process's batches and seeds."""

    source: Source
    data: ml_collections.ConfigDict
    seed: int
    process_index: int
    process_count: int
    devices: tuple[jax.Device, ...]
    train_batch: int  # this process's examples per step
    eval_batch: int
    decoders: tfds.decode.PartialDecoding
    drawn: tuple[bool, ...] | None = None  # train_per_class: which examples of the whole training split
    sizes: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # split -> examples of each process

    @property
    def steps_per_epoch(self) -> int:
        return min(self.sizes[self.data.train_split]) // self.train_batch if self.data.train_split else 0

    def eval_steps(self, split: str) -> int:
        return math.ceil(max(self.sizes[split]) / self.eval_batch)


def _read(plan: _Plan, part: str) -> tf.data.Dataset:
    """The parsed examples of `part` (a split, or a process's part of one) that the source keeps."""
    source = plan.source
    ds = source.builder.as_dataset(
        split=part, shuffle_files=False, decoders=plan.decoders, read_config=tfds.ReadConfig(try_autocache=False)
    )
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = TF_DATA_AUTOTUNE
    ds = ds.with_options(options).map(source.parse, num_parallel_calls=AUTOTUNE)
    return ds if source.keep is None else ds.filter(source.keep)


def _share(plan: _Plan, split: str, index: int | None = None) -> tf.data.Dataset:
    """The parsed examples of `split` that process `index` (default: this one) reads."""
    index = plan.process_index if index is None else index
    whole = expand(split, plan.source.splits)
    if split != plan.data.train_split or plan.drawn is None:
        return _read(plan, tfds.split_for_jax_process(whole, process_count=plan.process_count, process_index=index))
    chosen = tf.constant(plan.drawn)
    ds = _read(plan, whole).enumerate().filter(lambda i, _: tf.gather(chosen, i)).map(lambda _, ex: ex)
    return ds.shard(plan.process_count, index)


def _draw(plan: _Plan, k: int) -> tuple[bool, ...]:
    """Which examples of the whole training split train_per_class=k keeps."""
    source, split = plan.source, plan.data.train_split
    if source.multi_label:
        raise DataError(
            f"config.train_per_class={k} draws photos of each class, which {source.name} (multi-label) does not "
            "have one of: set train_per_class=0."
        )
    labels = np.asarray(list(_read(plan, expand(split, source.splits)).map(lambda ex: ex["label"]).as_numpy_iterator()))
    chosen = np.zeros(len(labels), bool)
    chosen[per_class(labels, k, plan.seed)] = True
    return tuple(chosen.tolist())


def _share_sizes(plan: _Plan, split: str) -> list[int]:
    if split == plan.data.train_split and plan.drawn is not None:
        drawn = sum(plan.drawn)
        return [len(range(p, drawn, plan.process_count)) for p in range(plan.process_count)]
    splits = plan.source.builder.info.splits
    if plan.source.keep is None and len(splits):
        return [
            splits[
                tfds.split_for_jax_process(
                    expand(split, plan.source.splits), process_index=p, process_count=plan.process_count
                )
            ].num_examples
            for p in range(plan.process_count)
        ]
    # Filtered (or mocked) data: count by reading the labels; the images stay encoded.
    return [int(_share(plan, split, p).reduce(np.int64(0), lambda n, _: n + 1)) for p in range(plan.process_count)]


def _host_batches(plan: _Plan, ds: tf.data.Dataset, split: str) -> Iterator[dict]:
    """numpy batches of `ds`; an example that cannot be decoded is named in one sentence."""
    iterator = ds.as_numpy_iterator()
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except tf.errors.InvalidArgumentError as e:
            raise DataError(find_bad_example(plan.source, _share(plan, split), split, e)) from None
        yield batch


def _train_batches(plan: _Plan, epoch: int, start_step: int = 0) -> Iterator[dict]:
    data, spe = plan.data, plan.steps_per_epoch
    if not data.train_split:
        raise ValueError("These pipelines were built for evaluation only (config.data.train_split is '').")
    if not 0 <= start_step <= spe:
        raise ValueError(f"start_step {start_step} is outside the epoch's {spe} steps.")
    shuffle_seed, augment_seed = epoch_seeds(plan.seed, epoch, plan.process_index)
    preprocess = preprocessor(data, plan.source, train=True)
    ds = _share(plan, data.train_split)
    ds = ds.shuffle(
        min(data.shuffle_buffer, plan.sizes[data.train_split][plan.process_index]),
        seed=shuffle_seed,
        reshuffle_each_iteration=False,
    )
    # Positions are numbered before skipping, so an example's augmentation seed is the same
    # whether the epoch starts at step 0 or resumes at start_step.
    ds = ds.take(spe * plan.train_batch).enumerate().skip(start_step * plan.train_batch)
    ds = ds.map(
        lambda i, ex: preprocess(ex, tf.stack([tf.constant(augment_seed, tf.int64), i])), num_parallel_calls=AUTOTUNE
    )
    ds = add_device_axis(ds, plan.train_batch, len(plan.devices))
    return place_on_devices(_host_batches(plan, ds, data.train_split), data, plan.devices)


def _eval_batches(plan: _Plan, split: str, with_names: bool = False) -> Iterator[dict]:
    """Every example of `split` once, padded to the same number of batches on every process;
    `with_names` adds each one's file name or id as 'name' (bytes; padding b'') and leaves the
    batches on the host as numpy."""
    preprocess = preprocessor(plan.data, plan.source, train=False)
    if with_names:
        ds = _share(plan, split).map(lambda ex: {**preprocess(ex), "name": ex["name"]}, num_parallel_calls=AUTOTUNE)
    else:
        ds = _share(plan, split).map(preprocess, num_parallel_calls=AUTOTUNE)
    padding = plan.eval_steps(split) * plan.eval_batch - plan.sizes[split][plan.process_index]
    blank = tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), ds.element_spec)
    ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(padding))
    found = _host_batches(plan, add_device_axis(ds, plan.eval_batch, len(plan.devices)), split)
    return found if with_names else place_on_devices(found, plan.data, plan.devices)


def _encoded_images(source: Source) -> tfds.decode.PartialDecoding:
    """Reads only the features `parse` needs; images stay encoded until after shuffling and skipping."""
    images = [k for k in source.features if isinstance(source.builder.info.features[k], tfds.features.Image)]
    return tfds.decode.PartialDecoding(
        {k: True for k in source.features}, decoders={k: tfds.decode.SkipDecoding() for k in images}
    )


def build_pipelines(
    source: Source,
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
    """The pipelines of a prepared source (see make_pipelines)."""
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, {process_count}).")
    data = resolve_data_config(data)
    eval_splits = tuple(data.eval_splits) or tuple(s for s in source.splits if s != data.train_split)
    read = tuple(s for s in (data.train_split, *eval_splits) if s)  # train_split '': evaluation only
    check_splits(read, source.splits, source.name)
    plan = _Plan(
        source=source,
        data=data,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
        devices=tuple(devices),
        decoders=_encoded_images(source),
        train_batch=local_batch(batch_size, process_count, len(devices), "config.batch_size"),
        eval_batch=local_batch(eval_batch_size, process_count, len(devices), "config.eval_batch_size"),
    )
    if train_per_class and data.train_split:
        plan = dataclasses.replace(plan, drawn=_draw(plan, train_per_class))
    plan = dataclasses.replace(plan, sizes={split: _share_sizes(plan, split) for split in dict.fromkeys(read)})
    if data.train_split and plan.steps_per_epoch == 0:
        raise DataError(
            f"{source.name} {data.train_split!r} gives {min(plan.sizes[data.train_split])} examples "
            f"to a process, fewer than one batch of {plan.train_batch}: lower config.batch_size."
        )
    channels = 1 if data.grayscale else 3
    info = DatasetInfo(
        name=source.name,
        num_classes=len(source.class_names),
        class_names=source.class_names,
        image_shape=(data.image_size, data.image_size, channels),
        num_examples={split: sum(n) for split, n in plan.sizes.items()},
        multi_label=source.multi_label,
        has_mask=source.has_mask,
        source=str(source.builder.data_dir),
    )
    return Pipelines(
        train=functools.partial(_train_batches, plan),
        steps_per_epoch=plan.steps_per_epoch,
        evals={split: functools.partial(_eval_batches, plan, split) for split in eval_splits},
        eval_steps={split: plan.eval_steps(split) for split in eval_splits},
        info=info,
    )
