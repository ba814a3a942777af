"""Training a frozen backbone's head on features computed once (`config.cache_features`).

With `config.cache_features=True` and a model whose backbone is frozen (`freeze_backbone=True`:
InceptionV3's pooled features, the autoencoder encoder's codes), `fit` computes the backbone's
features of every example once,
caches them in $JAXVISION_CACHE/features/ (see `jaxvision.cache`), and trains and
evaluates the head on them. A frozen backbone computes exactly these features in training too
(its batch norm stays in inference mode and it has no dropout), so this changes the speed, not
the result: on 2 CPU cores an epoch of 700 Oxford-102 photos at 299x299 takes a second instead
of minutes. The state and its checkpoints remain those of the whole model, so `--mode evaluate`,
predictions and a later fine-tuning run read them on images as usual.

Training images are seen one of two ways (`config.feature_views`):

* 1: un-augmented, as evaluation reads them (the config must not augment);
* V > 1: V augmented copies, copy v being the training pipeline's epoch v (its own random crops
  and flips); epoch e trains on copy e mod V, in an order drawn afresh for each epoch. This is
  training with augmentation whose draws repeat every V epochs.

The cache key covers the dataset (its tfds name, which for a folder holds a hash of its
listing), the split and this process's share of it, the preprocessing (and for augmented copies
the seed, batch size and copy), a hash of the backbone's weights and, under
JAXVISION_ONEDNN=1, that oneDNN computed the convolutions (their float32 sums run in another
order, so a run with it never reads features XLA computed, nor the other way round): anything
else gets features of its own.

`config.train_per_class=k` (with one view) trains on k photos of each class of the cached
training features, drawn once from the seed: one extraction serves a whole data-scaling curve.

`config.cv_folds=K` cross-validates on the training photos alone: every cached row keeps its
photo's name, the photos are dealt into K folds by class (`batches.folds`), and the run trains
on the copies of the photos outside fold `config.cv_fold` and evaluates the centred view of
those inside it as split 'fold'. The held-out splits are neither extracted nor evaluated, so
the same extraction serves every fold and every number of copies.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import time

import jax
import ml_collections
import numpy as np
import tqdm
from flax import jax_utils

from jaxvision.cache import cache_dir
from jaxvision.data.batches import folds, per_class, real_examples
from jaxvision.models import onednn_conv
from jaxvision.train.engine import Engine
from jaxvision.train.state import TrainState

_PREPROCESSING = ("image_size", "eval_crop", "central_crop_fraction", "value_range", "grayscale")
_FIELDS = ("features", "label", "name")  # what a cache file holds
_AUGMENTATION = ("train_crop", "inception_crop_area", "inception_crop_aspect", "random_flip", "shuffle_buffer")


def _augments(data) -> bool:
    return data.random_flip or data.train_crop != data.eval_crop


def check(config: ml_collections.ConfigDict, model) -> None:
    """Stops with a sentence when `config.cache_features` cannot be honoured."""
    if not (getattr(model, "freeze_backbone", False) and hasattr(model, "backbone")):
        raise ValueError(
            "config.cache_features trains a frozen backbone's head on cached features: it needs a "
            "model with freeze_backbone=True (inception_v3, frozen_encoder_classifier); set "
            "config.cache_features=False otherwise."
        )
    if config.feature_views == 1 and _augments(config.data):
        raise ValueError(
            "config.cache_features with config.feature_views=1 computes each training image's features "
            "once, without augmentation: set config.data.random_flip=False and config.data.train_crop "
            f"to config.data.eval_crop ({config.data.eval_crop!r}), or set config.feature_views to the "
            "number of augmented copies to cache."
        )
    if config.feature_views > 1 and not _augments(config.data):
        raise ValueError(
            f"config.feature_views={config.feature_views} caches augmented copies of the training "
            "images, but config.data augments nothing: set config.data.random_flip=True or "
            "config.data.train_crop='inception', or config.feature_views=1."
        )


def _backbone_hash(model, state: TrainState) -> str:
    digest = hashlib.sha1(repr((type(model).__name__, getattr(model, "last_pool", ""), str(model.dtype))).encode())
    head = set(getattr(model, "head_names", ()))
    variables = {"params": {k: v for k, v in state.params.items() if k not in head}, "batch_stats": state.batch_stats}
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(np.ascontiguousarray(leaf).tobytes())
    return digest.hexdigest()


def _cache_file(info, name: str, key: dict) -> str:
    backend = {"convolutions": "onednn"} if onednn_conv.enabled() else {}  # absent: the names of caches before it
    text = json.dumps(
        {"dataset": info.source, "process": [jax.process_index(), jax.process_count()], **key, **backend},
        sort_keys=True,
        default=list,
    )
    return os.path.join(
        cache_dir(),
        "features",
        f"{info.name}-{name.replace('+', '_')}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npz",
    )


def _extract(engine: Engine, variables, batches, total: int, desc: str) -> dict[str, np.ndarray]:
    """The pooled features, labels and names of the real (not padded) examples of `batches`."""
    backbone, scope = engine.model.backbone()
    variables = variables if scope is None else {"params": variables["params"][scope]}
    forward = jax.pmap(lambda v, x: backbone.apply(v, x).reshape(x.shape[0], -1))
    parts: dict[str, list[np.ndarray]] = {"features": [], "label": [], "name": []}
    with tqdm.tqdm(total=total, desc=desc, unit="img", leave=False, dynamic_ncols=True) as bar:
        for batch in batches():
            features = forward(variables, batch["image"])
            kept = {k: batch[k] for k in ("label", "name", "valid")}
            examples = real_examples({"features": features, **kept})
            examples["name"] = examples["name"].astype(np.bytes_)  # tf.data gives objects, which np.load refuses
            for key in parts:
                parts[key].append(examples[key])
            bar.update(len(examples["label"]))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _load_or_extract(engine: Engine, state: TrainState, info, sources: dict, say) -> dict[str, dict]:
    """{name: {'features', 'label'}} of each source `name: (batches, examples, key)`, from the
    cache or computed (and cached) now."""
    backbone = _backbone_hash(engine.model, state)
    found, variables = {}, None
    for name, (batches, total, key) in sources.items():
        path = _cache_file(info, name, {**key, "backbone": backbone, "fields": sorted(_FIELDS)})
        if os.path.isfile(path):
            with np.load(path) as f:
                found[name] = {k: f[k] for k in f.files}
            continue
        if variables is None:
            variables = jax_utils.replicate(state.variables())
        started = time.time()
        found[name] = _extract(engine, variables, batches, total, f"features of {name}")
        say(
            f"Features of the {len(found[name]['features'])} images of {name!r} computed in "
            f"{time.time() - started:.0f} s; cached in {path}."
        )
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), suffix=".npz", delete=False) as out:
            np.savez(out, **found[name])
        os.replace(out.name, path)
    return found


class FeaturePipelines:
    """The `Pipelines` interface over cached features: batches whose 'image' holds the pooled
    features `[devices, per-device batch, 2048]`, with 'label' and 'valid' as usual."""

    def __init__(self, config, views: list[dict], evals: dict[str, dict], image_pipelines):
        self._views, self._splits, self._seed = views, evals, config.seed
        self._devices = jax.local_devices()
        self._prefetch = config.data.prefetch_to_device
        # The loop stacks several steps' batches on the host before it dispatches them.
        self._train_prefetch = 0 if config.steps_per_dispatch > 1 else self._prefetch
        self._train_batch = config.batch_size // jax.process_count()
        self._eval_batch = config.eval_batch_size // jax.process_count()
        # Every process must run as many steps as the others: only a draw or a fold (one process) changes them.
        drawn = config.train_per_class or config.cv_folds
        fewest = min(len(view["features"]) for view in views)
        self.steps_per_epoch = fewest // self._train_batch if drawn else image_pipelines.steps_per_epoch
        if not self.steps_per_epoch:
            raise ValueError(
                f"config.batch_size={config.batch_size} is more than the {fewest} training photos drawn: lower "
                "the batch size or raise config.train_per_class."
            )
        self.eval_steps = {
            split: image_pipelines.eval_steps.get(split) or -(-len(arrays["label"]) // self._eval_batch)
            for split, arrays in evals.items()
        }
        self.info = image_pipelines.info
        self.evals = {split: self._evaluator(split) for split in self.eval_steps}

    def _batch(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        d = len(self._devices)
        return {k: v.reshape((d, len(v) // d) + v.shape[1:]) for k, v in arrays.items()}

    def _placed(self, batches, prefetch: int | None = None):
        prefetch = self._prefetch if prefetch is None else prefetch
        if not prefetch:
            return batches
        return jax_utils.prefetch_to_device(batches, prefetch, devices=self._devices)

    def train(self, epoch: int, start_step: int = 0):
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step {start_step} is outside the epoch's {self.steps_per_epoch} steps.")
        view = self._views[epoch % len(self._views)]
        seed = np.random.SeedSequence([self._seed % 2**32, epoch, jax.process_index()])
        order = np.random.default_rng(seed).permutation(len(view["features"]))
        b = self._train_batch

        def batches():
            for step in range(start_step, self.steps_per_epoch):
                chosen = order[step * b : (step + 1) * b]
                yield self._batch(
                    {
                        "image": view["features"][chosen],
                        "label": view["label"][chosen],
                        "valid": np.ones((b,), np.float32),
                    }
                )

        return self._placed(batches(), self._train_prefetch)

    def _evaluator(self, split: str):
        def evaluate():
            arrays, b = self._splits[split], self._eval_batch
            n, total = len(arrays["features"]), self.eval_steps[split] * self._eval_batch
            padded = {
                k: np.concatenate([v, np.zeros((total - n,) + v.shape[1:], v.dtype)])
                for k, v in (("image", arrays["features"]), ("label", arrays["label"]))
            }
            padded["valid"] = (np.arange(total) < n).astype(np.float32)
            return self._placed(
                self._batch({k: v[i * b : (i + 1) * b] for k, v in padded.items()})
                for i in range(self.eval_steps[split])
            )

        return evaluate


def cached(
    config: ml_collections.ConfigDict, engine: Engine, state: TrainState, make_pipelines, say=print
) -> FeaturePipelines:
    """Pipelines of features of the frozen backbone in `state` (host arrays), computed once and
    cached; `make_pipelines(config)` builds the image pipelines. Each epoch's training order
    is drawn from (config.seed, epoch, process), so a resumed run sees the same batches."""
    check(config, engine.model)
    data, views, cv = config.data, config.feature_views, config.cv_folds
    # config.train_per_class is drawn below, from the features: one extraction serves every k.
    undrawn = config.copy_and_resolve_references()
    undrawn.train_per_class = 0
    images = make_pipelines(undrawn)
    plain = {k: data[k] for k in _PREPROCESSING}
    sources = {}
    if views == 1 or cv:  # training images read as evaluation reads them (the folds are scored on these)
        every = undrawn.copy_and_resolve_references()
        every.data.eval_splits = (data.train_split, *images.evals)
        images_and_train = make_pipelines(every)
        sources[data.train_split] = (
            functools.partial(images_and_train.evals[data.train_split], with_names=True),
            images_and_train.info.num_examples[data.train_split],
            {"read": plain},
        )
    if views > 1:
        augmented = {
            "read": plain,
            "augmentation": {k: data[k] for k in _AUGMENTATION},
            "seed": config.seed,
            "batch_size": config.batch_size,
        }
        count = images.steps_per_epoch * config.batch_size // jax.process_count()
        for v in range(views):
            batches = functools.partial(images.train, v, with_names=True)
            sources[f"{data.train_split}-copy{v}"] = (batches, count, {**augmented, "copy": v})
    held_out = {} if cv else images.evals  # cross-validation reads the training photos alone
    sources.update(
        {
            split: (functools.partial(batches, with_names=True), images.info.num_examples[split], {"read": plain})
            for split, batches in held_out.items()
        }
    )
    found = _load_or_extract(engine, state, images.info, sources, say)
    train_names = [data.train_split] if views == 1 else [f"{data.train_split}-copy{v}" for v in range(views)]
    train_views = [found[n] for n in train_names]
    evals = {s: found[s] for s in held_out}
    if config.train_per_class or cv:
        if jax.process_count() > 1:
            raise ValueError(
                "config.train_per_class and config.cv_folds draw from one process's photos: run it in one process."
            )
    if config.train_per_class:
        kept = per_class(train_views[0]["label"], config.train_per_class, config.seed)
        train_views = [{k: v[kept] for k, v in train_views[0].items()}]
    if cv:
        train_views, evals = held_in(train_views, found[data.train_split], cv, config.cv_fold, config.seed)
    return FeaturePipelines(config, train_views, evals, images)


def held_in(views: list[dict], centred: dict, count: int, fold: int, seed: int) -> tuple[list[dict], dict]:
    """Fold `fold` of `count` of the training photos (`centred`: one row each): the rows of
    `views` whose photo lies outside it, and {'fold': the centred rows inside it}. Photos are
    matched by name, so each augmented copy of a photo lands on the same side."""
    fold_of = dict(zip(centred["name"].tolist(), folds(centred["label"], count, seed).tolist()))

    def part(arrays: dict, inside: bool) -> dict:
        keep = np.array([(fold_of[n] == fold) == inside for n in arrays["name"].tolist()], bool)
        return {k: v[keep] for k, v in arrays.items()}

    return [part(view, inside=False) for view in views], {"fold": part(centred, inside=True)}
