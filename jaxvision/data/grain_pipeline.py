"""grain pipelines, which read a dataset prepared in tfds' array_record format without TensorFlow.

    --config.data.reader=grain          # prepares an array_record copy (TensorFlow needed), says where
    --config.data.reader=grain --config.data.prepared=DIR   # reads DIR; TensorFlow not needed

Where TensorFlow is installed, the dataset is prepared as for tf.data (the same builders), in
array_record format, under the data dir's `array_record/` folder (tfds cannot read one format
as the other); the log names the folder. Copy that folder to a host without TensorFlow and give
it as config.data.prepared.

The same batches as pipeline.py's, in their contract: this process's share of each split
(tfds.split_for_jax_process), the training share permuted by a seed drawn from (config.seed,
epoch, process), each example's crop and flip drawn from a generator seeded by the same triple
and its position in the epoch (so `train(epoch, start_step)` resumes exactly), evaluation
padded to the same number of batches on every process with examples whose 'valid' is 0. The
permutation is always a full one (config.data.shuffle_buffer is tf.data's), and the random
numbers are numpy's, so a run reads its examples in another order than with tf.data.
`train_per_class=k` draws the same examples as tf.data does.

With config.data.cache_decoded, each example is decoded (and, where its crop is not random,
cropped and resized) once and kept in memory: the first epoch fills the cache, later ones only
augment. config.data.read_threads threads read and preprocess examples (default: one per core
this process may use).

Which feature holds what is per dataset (grain_fields.py); what the two readers share (which
splits, batch sizes, steps, padding, checks) is plan.py's.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence

import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from jaxvision.data.batches import Pipelines, epoch_seeds, expand, per_class, this_process
from jaxvision.data.config import resolve_data_config
from jaxvision.data.errors import DataError
from jaxvision.data.grain_fields import Fields, fields
from jaxvision.data.plan import Contents, Plan, from_config, prepared_first
from jaxvision.data.preprocess_np import decode, preprocessor

FORMAT = "array_record"


def prepared_dir(data: ml_collections.ConfigDict) -> str:
    """The folder of the dataset in array_record format: config.data.prepared, or prepared here
    (process 0 first: plan.prepared_first)."""
    if data.prepared:
        if not os.path.isfile(os.path.join(data.prepared, "dataset_info.json")):
            raise DataError(
                f"config.data.prepared {data.prepared} holds no prepared dataset (no dataset_info.json): "
                "give the folder that preparing it named (…/NAME/CONFIG/VERSION)."
            )
        return data.prepared
    try:
        from jaxvision.data import sources  # imports TensorFlow, which tfds' builders need
    except ImportError:
        raise DataError(
            "config.data.reader='grain' without config.data.prepared needs TensorFlow to prepare the "
            "dataset, and it is not installed here: prepare it where it is (the log names the folder) "
            "and set --config.data.prepared to that folder."
        ) from None
    root = data.data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    copy = data.copy_and_resolve_references()
    copy.data_dir = os.path.join(root, FORMAT)

    def prepare() -> str:
        return str(sources.prepared_source(copy, file_format=FORMAT).builder.data_dir)

    return prepared_first(prepare)


def _open(directory: str):
    """The read-only tfds builder of the array_record dataset in `directory`."""
    builder = tfds.builder_from_directory(directory)
    if FORMAT not in {str(f.value) for f in builder.info.available_file_formats()}:
        raise DataError(
            f"{directory} is prepared in {builder.info.file_format.value} format; the grain reader reads "
            f"{FORMAT}: leave config.data.prepared empty to prepare a copy in it where TensorFlow is installed."
        )
    return builder


class _Share:
    """One process's share of a split (the examples `keep` accepts): `fixed(i)` is example i decoded
    and, where the crop is not random, cropped and resized, kept in memory with
    config.data.cache_decoded."""

    def __init__(self, builder, split: str, process_index: int, process_count: int, f: Fields, data):
        part = tfds.split_for_jax_process(split, process_index=process_index, process_count=process_count)
        skip = {k: tfds.decode.SkipDecoding() for k in (f.image, f.mask) if k}
        self.records = builder.as_data_source(split=part, decoders=skip, file_format=FORMAT)
        self.fields, self.split, self.data = f, split, data
        every = range(len(self.records))
        self.index = list(every) if f.keep is None else [i for i in every if f.keep(f.label(self.records[i]))]
        self.cache = {} if data.cache_decoded else None

    def __len__(self) -> int:
        return len(self.index)

    def subset(self, index: list[int]) -> _Share:
        """The same records, of which only `index` are this share's (a cache of its own)."""
        share = copy.copy(self)
        share.index, share.cache = list(index), ({} if self.cache is not None else None)
        return share

    def fixed(self, i: int, fixed, directory: str) -> dict:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        f, record = self.fields, self.records[self.index[i]]
        name = record[f.name].decode("utf-8", "replace")
        try:
            image = decode(record[f.image], 3)
            mask = None if f.mask is None else decode(record[f.mask], 1)
        except OSError as e:
            raise DataError(
                f"{name} of {self.data.name} ({self.split}) cannot be read ({e}); its prepared copy under "
                f"{directory} is damaged: delete that folder to prepare it again."
            ) from None
        if mask is not None and mask.shape[:2] != image.shape[:2]:
            raise DataError(f"{name} of {self.data.name} ({self.split}): its mask and image sizes differ.")
        image, mask = fixed(image, mask)
        example = dict(image=image, mask=mask, label=f.label(record), name=record[f.name])
        if self.cache is not None:
            self.cache[i] = example
        return example


def add_device_axis(examples: Sequence[dict], num_devices: int, names: bool = False) -> dict:
    """One batch of `examples` shaped `[num_devices, len(examples) // num_devices, ...]`: the
    leading axis is the one `jax.pmap` maps over (the arrays stay on the host)."""
    keys = [k for k in examples[0] if names or k != "name"]
    per_device = len(examples) // num_devices
    return {
        k: np.stack([ex[k] for ex in examples]).reshape(num_devices, per_device, *np.shape(examples[0][k]))
        for k in keys
    }


def _iterate(data: ml_collections.ConfigDict, ds: grain.MapDataset) -> Iterator[dict]:
    threads = data.read_threads or len(os.sched_getaffinity(0))
    return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=2 * threads)))


class _Stream:
    """grain's examples of the array_record dataset in `directory` (plan.Reader)."""

    def __init__(self, data: ml_collections.ConfigDict, directory: str):
        self.builder, self.data, self.directory = _open(directory), data, directory
        f = self.fields = fields(data, self.builder)
        splits = tuple(self.builder.info.splits)
        self.contents = Contents(data.name, f.class_names, f.multi_label, f.mask is not None, splits, directory)
        self.shares: dict[str, _Share] = {}  # split -> this process's share

    def share_out(self, plan: Plan, split: str, train_per_class: int) -> list[int]:
        f, whole, count = self.fields, expand(split, self.contents.splits), plan.process_count
        if train_per_class:  # drawn from the whole split as tf.data draws them, then shared out
            every = _Share(self.builder, whole, 0, 1, f, self.data)
            labels = np.asarray([f.label(every.records[i]) for i in every.index])
            kept = [every.index[i] for i in per_class(labels, train_per_class, plan.seed)]
            shares = [every.subset(kept[p::count]) for p in range(count)]
        else:
            shares = [_Share(self.builder, whole, p, count, f, self.data) for p in range(count)]
        self.shares[split] = shares[plan.process_index]
        return [len(share) for share in shares]

    def _example(self, plan: Plan, split: str, train: bool):
        """(index in the share, rng) -> the model's example."""
        share, (fixed, varied) = self.shares[split], preprocessor(plan.data, train)
        channels = 1 if plan.data.grayscale else 3

        def run(i: int, rng: np.random.Generator | None = None) -> dict:
            found = share.fixed(i, fixed, self.directory)
            image, mask = varied(found["image"], found["mask"], rng)
            out = {"image": image.reshape(*image.shape[:2], channels), "label": found["label"], "valid": np.float32(1)}
            if mask is not None:
                out["mask"] = mask.astype(np.float32)
            out["name"] = found["name"]
            return out

        return run

    def train_batches(self, plan: Plan, epoch: int, start_step: int, with_names: bool = False) -> Iterator[dict]:
        split, batch = plan.data.train_split, plan.train_batch
        shuffle_seed, augment_seed = epoch_seeds(plan.seed, epoch, plan.process_index)
        example = self._example(plan, split, train=True)
        # One numpy permutation an epoch: grain's MapDataset.shuffle computes each index apart
        # (about 0.1 ms), which cost more than the rest of a cached example.
        order = np.random.default_rng(shuffle_seed).permutation(len(self.shares[split]))
        ds = grain.MapDataset.source(order[: plan.steps_per_epoch * batch].tolist())
        # Positions are numbered before skipping, so an example's crop and flip are the same whether
        # the epoch starts at step 0 or resumes at start_step.
        ds = ds.map_with_index(lambda position, i: example(i, np.random.default_rng([augment_seed, position])))
        ds = ds[start_step * batch :].batch(
            batch, drop_remainder=True, batch_fn=lambda b: add_device_axis(b, len(plan.devices), with_names)
        )
        return _iterate(plan.data, ds)

    def _blank(self, plan: Plan) -> dict:
        channels, size = 1 if plan.data.grayscale else 3, plan.data.image_size
        blank = {
            "image": np.zeros((size, size, channels), np.float32),
            "label": np.zeros(len(self.fields.class_names), np.float32),
            "valid": np.float32(0),
        }
        if self.fields.mask:
            blank["mask"] = np.zeros((size, size, 1), np.float32)
        return {**blank, "name": b""}

    def eval_batches(self, plan: Plan, split: str, with_names: bool) -> Iterator[dict]:
        ds = grain.MapDataset.source(range(len(self.shares[split]))).map(self._example(plan, split, train=False))
        ds = grain.MapDataset.concatenate([ds, grain.MapDataset.source([self._blank(plan)] * plan.padding(split))])
        ds = ds.batch(plan.eval_batch, batch_fn=lambda b: add_device_axis(b, len(plan.devices), with_names))
        return _iterate(plan.data, ds)


def make_pipelines(config: ml_collections.ConfigDict, **process) -> Pipelines:
    """The grain pipelines of `config.data` for this process (arguments as pipeline.make_pipelines)."""
    data = resolve_data_config(config.get("data"))
    process_index, process_count, devices = this_process(**process)
    directory = prepared_dir(data)
    if process_index == 0 and not data.prepared:
        print(f"grain reads {data.name} from {directory} (--config.data.prepared there, where TensorFlow is not).")
    return from_config(_Stream(data, directory), config, process_index, process_count, devices)
