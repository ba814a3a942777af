"""tf.data pipelines: this process's share of each split, preprocessed, batched per device.

Training order: the share is shuffled with a seed drawn from (config.seed, epoch, process), and
each example's random crop and flip use a seed drawn from the same triple and the example's
position in the epoch, so `train(epoch, start_step)` yields exactly the batches that
`train(epoch)` yields from that step on. Every process runs the same number of steps: the
remainder of the smallest share is dropped in training, and evaluation pads every share to
the same number of batches with examples whose 'valid' is 0.

`train_per_class=k` trains on k examples of each class, drawn once from the seed out of the
whole training split (batches.per_class) and then shared out among the processes.

What the two readers share (which splits, batch sizes, steps, padding, checks) is plan.py's; this
module supplies tf.data's example stream.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxvision.data.batches import Pipelines, epoch_seeds, expand, per_class, this_process
from jaxvision.data.config import resolve_data_config
from jaxvision.data.errors import DataError
from jaxvision.data.plan import Contents, Plan, from_config, pipelines_of, prepared_first
from jaxvision.data.preprocess import find_bad_example, preprocessor
from jaxvision.data.sources import Source, prepared_source

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
    source = prepared_first(lambda: prepared_source(data))
    return from_config(_Stream(source), config, *this_process(process_index, process_count, devices))


def build_pipelines(source: Source, data: ml_collections.ConfigDict, **kwargs) -> Pipelines:
    """The pipelines of a prepared source (keyword arguments as plan.pipelines_of)."""
    return pipelines_of(_Stream(source), data, **kwargs)


def add_device_axis(ds: tf.data.Dataset, local_batch: int, num_devices: int) -> tf.data.Dataset:
    """Batches of `local_batch` examples shaped `[num_devices, local_batch // num_devices, ...]`:
    the leading axis is the one `jax.pmap` maps over (the arrays stay on the host)."""
    per_device = local_batch // num_devices

    def split(batch):
        return {k: tf.reshape(v, (num_devices, per_device, *v.shape[1:])) for k, v in batch.items()}

    return ds.batch(local_batch, drop_remainder=True).map(split).prefetch(AUTOTUNE)


def _encoded_images(source: Source) -> tfds.decode.PartialDecoding:
    """Reads only the features `parse` needs; images stay encoded until after shuffling and skipping."""
    images = [k for k in source.features if isinstance(source.builder.info.features[k], tfds.features.Image)]
    return tfds.decode.PartialDecoding(
        {k: True for k in source.features}, decoders={k: tfds.decode.SkipDecoding() for k in images}
    )


class _Stream:
    """tf.data's examples of a prepared source (plan.Reader)."""

    def __init__(self, source: Source):
        self.source, self.decoders = source, _encoded_images(source)
        self.contents = Contents(
            source.name,
            source.class_names,
            source.multi_label,
            source.has_mask,
            source.splits,
            str(source.builder.data_dir),
        )
        self.drawn: tuple[bool, ...] | None = None  # train_per_class: which examples of the whole training split

    def _read(self, part: str) -> tf.data.Dataset:
        """The parsed examples of `part` (a split, or a process's part of one) that the source keeps."""
        source = self.source
        ds = source.builder.as_dataset(
            split=part, shuffle_files=False, decoders=self.decoders, read_config=tfds.ReadConfig(try_autocache=False)
        )
        options = tf.data.Options()
        options.deterministic = True
        options.autotune.enabled = TF_DATA_AUTOTUNE
        ds = ds.with_options(options).map(source.parse, num_parallel_calls=AUTOTUNE)
        return ds if source.keep is None else ds.filter(source.keep)

    def _share(self, plan: Plan, split: str, index: int | None = None) -> tf.data.Dataset:
        """The parsed examples of `split` that process `index` (default: this one) reads."""
        index = plan.process_index if index is None else index
        whole = expand(split, self.source.splits)
        if split != plan.data.train_split or self.drawn is None:
            part = tfds.split_for_jax_process(whole, process_count=plan.process_count, process_index=index)
            return self._read(part)
        chosen = tf.constant(self.drawn)
        ds = self._read(whole).enumerate().filter(lambda i, _: tf.gather(chosen, i)).map(lambda _, ex: ex)
        return ds.shard(plan.process_count, index)

    def share_out(self, plan: Plan, split: str, train_per_class: int) -> list[int]:
        count, whole = plan.process_count, expand(split, self.source.splits)
        if train_per_class:
            labels = np.asarray(list(self._read(whole).map(lambda ex: ex["label"]).as_numpy_iterator()))
            chosen = np.zeros(len(labels), bool)
            chosen[per_class(labels, train_per_class, plan.seed)] = True
            self.drawn = tuple(chosen.tolist())
            return [len(range(p, sum(self.drawn), count)) for p in range(count)]
        splits = self.source.builder.info.splits
        if self.source.keep is None and len(splits):
            parts = [tfds.split_for_jax_process(whole, process_index=p, process_count=count) for p in range(count)]
            return [splits[part].num_examples for part in parts]
        # Filtered (or mocked) data: count by reading the labels; the images stay encoded.
        return [int(self._share(plan, split, p).reduce(np.int64(0), lambda n, _: n + 1)) for p in range(count)]

    def _host_batches(self, plan: Plan, ds: tf.data.Dataset, split: str) -> Iterator[dict]:
        """numpy batches of `ds`; an example that cannot be decoded is named in one sentence."""
        iterator = ds.as_numpy_iterator()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except tf.errors.InvalidArgumentError as e:
                raise DataError(find_bad_example(self.source, self._share(plan, split), split, e)) from None
            yield batch

    def train_batches(self, plan: Plan, epoch: int, start_step: int, with_names: bool = False) -> Iterator[dict]:
        data, batch = plan.data, plan.train_batch
        shuffle_seed, augment_seed = epoch_seeds(plan.seed, epoch, plan.process_index)
        preprocess = preprocessor(data, self.source, train=True)
        ds = self._share(plan, data.train_split)
        ds = ds.shuffle(
            min(data.shuffle_buffer, plan.sizes[data.train_split][plan.process_index]),
            seed=shuffle_seed,
            reshuffle_each_iteration=False,
        )
        # Positions are numbered before skipping, so an example's augmentation seed is the same
        # whether the epoch starts at step 0 or resumes at start_step.
        ds = ds.take(plan.steps_per_epoch * batch).enumerate().skip(start_step * batch)

        def example(i, ex):
            out = preprocess(ex, tf.stack([tf.constant(augment_seed, tf.int64), i]))
            return {**out, "name": ex["name"]} if with_names else out

        ds = ds.map(example, num_parallel_calls=AUTOTUNE)
        return self._host_batches(plan, add_device_axis(ds, batch, len(plan.devices)), data.train_split)

    def eval_batches(self, plan: Plan, split: str, with_names: bool) -> Iterator[dict]:
        preprocess, ds = preprocessor(plan.data, self.source, train=False), self._share(plan, split)
        if with_names:
            ds = ds.map(lambda ex: {**preprocess(ex), "name": ex["name"]}, num_parallel_calls=AUTOTUNE)
        else:
            ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE)
        blank = tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), ds.element_spec)
        ds = ds.concatenate(tf.data.Dataset.from_tensors(blank).repeat(plan.padding(split)))
        return self._host_batches(plan, add_device_axis(ds, plan.eval_batch, len(plan.devices)), split)
