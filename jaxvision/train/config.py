"""The configuration fields that the training engine owns, with their defaults.

An experiment file sets `config.data` (see `jaxvision.data.default_data_config`),
`config.model` (see `jaxvision.models.build_model`) and any of the fields below; `resolve`
fills in the rest and rejects misspelt keys, so a typo stops the run instead of being ignored.

  seed, batch_size (global), eval_batch_size (global), num_epochs
  task            'classification' | 'multilabel' | 'reconstruction' | 'segmentation'
  loss            per task, see jaxvision.train.tasks.LOSSES
  optimizer       see jaxvision.train.optim
  monitor         metric ('SPLIT/NAME', e.g. 'validation/accuracy') and mode ('min'|'max') that
                  pick the best checkpoint and drive early stopping; metric '' turns both off
  early_stopping  patience (epochs without improvement of more than min_delta; 0: off)
  checkpoint      keep (latest checkpoints kept), every_steps (also save mid-epoch; 0: epoch
                  ends only), every_epochs (save at every this-many-th epoch end, and always at
                  the last, at a new best and at a stop; resume replays the epochs since)
  test_with       'best' or 'last': which state the final test evaluation uses
  log_every_steps also log each this-many-th step's training metrics, as split 'train_step'
                  (0: per epoch only)
  steps_per_dispatch  run up to this many train steps in one dispatch (a scan on the devices;
                  never across an epoch's end or a mid-epoch checkpoint): for steps so small
                  that the host's dispatch costs more than the step (a head on cached
                  features); 1 = each step dispatched alone
  peer_timeout_s  in a multi-process run, how long a silent peer may go before the others stop
  cache_features  train a frozen backbone's head on features computed once and cached
                  (see jaxvision.train.features)
  feature_views   with cache_features: 1 = training images un-augmented, V > 1 = features of V
                  augmented copies of each (epoch e trains on copy e mod V)
  train_per_class train on this many photos of each class (a draw fixed by the seed, each smaller
                  draw inside the larger; a class with fewer keeps all of them), from the images
                  or, with cache_features (and feature_views=1), from their cached features;
                  0 = every training photo
  cv_folds        with cache_features: K > 1 splits the training photos into K folds (by class,
                  from the seed), trains on all but fold `cv_fold` and evaluates that fold's
                  centred view as split 'fold' instead of the held-out splits; 0 = off
  cv_fold         the fold held out of training when cv_folds > 1 (0 .. cv_folds - 1)
  init            weights to start from (see jaxvision.weights.warmstart); absent = none
  half_precision  bfloat16 activations and convolutions (parameters, optimizer state, batch
                  statistics, softmax, losses and metrics stay float32); None (the default):
                  on when the run's devices are GPUs or TPUs, off on a CPU
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import ml_collections

from jaxvision.configs import apply_override
from jaxvision.train.optim import OPTIMIZERS, SCHEDULES
from jaxvision.train.tasks import make_task

# Sections whose keys must all be known: anything else is a misspelling.
_CHECKED_SECTIONS = ("optimizer", "monitor", "early_stopping", "checkpoint")


def default_config() -> ml_collections.ConfigDict:
    """Every field the engine reads, with its default."""
    return ml_collections.ConfigDict(
        dict(
            seed=0,
            batch_size=32,
            eval_batch_size=32,
            num_epochs=1,
            task="classification",
            loss="softmax_cross_entropy",
            optimizer=dict(
                name="adam",
                learning_rate=1e-3,
                schedule="constant",
                warmup_epochs=0.0,
                decay_rate=0.1,
                boundaries=(),
                b1=0.9,
                b2=0.999,
                eps=1e-7,
                rho=0.9,
                momentum=0.0,
                nesterov=False,
                clip_norm=0.0,
                l2=0.0,
                frozen=(),
                backbone_lr_scale=1.0,
            ),
            monitor=dict(metric="validation/loss", mode="min"),
            early_stopping=dict(patience=0, min_delta=0.0),
            checkpoint=dict(keep=2, every_steps=0, every_epochs=1),
            test_with="best",
            log_every_steps=0,
            steps_per_dispatch=1,
            peer_timeout_s=60,
            cache_features=False,
            feature_views=1,
            train_per_class=0,
            cv_folds=0,
            cv_fold=0,
            half_precision=ml_collections.FieldReference(None, field_type=bool),
        )
    )


def _assign(section: ml_collections.ConfigDict, key: str, value, name: str) -> None:
    if isinstance(section.get(key), tuple) and isinstance(value, list):
        value = tuple(value)
    try:
        section[key] = value
    except TypeError:
        raise ValueError(
            f"{name} is {value!r}, but it must be a {type(section[key]).__name__} like its default {section[key]!r}."
        ) from None


class ResolvedConfig(ml_collections.ConfigDict):
    """A config in the form the run uses: the engine's and the data's defaults filled in, the
    command line's overrides applied, every value checked. `resolve` makes it once (the command
    line; a suite, for each of its runs); everything that takes a config passes it down as it is."""


def resolve(config: ml_collections.ConfigDict, overrides: Sequence[tuple[str, str]] = ()) -> ResolvedConfig:
    """The experiment's config with every default filled in, then `overrides` (('optimizer.l2',
    '1e-4'), ...: the command line's, checked against the full schema) applied, then checked;
    misspelt keys are errors. A ResolvedConfig without overrides comes back as it is."""
    if isinstance(config, ResolvedConfig) and not overrides:
        return config
    resolved = ResolvedConfig(default_config())
    for key, value in config.items():
        if key in _CHECKED_SECTIONS:
            unknown = sorted(set(value.keys()) - set(resolved[key].keys()))
            if unknown:
                raise ValueError(
                    f"Unknown key config.{key}.{unknown[0]}: the known keys are "
                    f"{', '.join(sorted(resolved[key].keys()))}."
                )
            for sub_key, sub_value in value.items():
                _assign(resolved[key], sub_key, sub_value, f"config.{key}.{sub_key}")
        else:
            # data, model and anything else belong to other parts, which check them.
            _assign(resolved, key, value, f"config.{key}")
    if "data" in resolved:
        from jaxvision.data import check_data_config, filled_data_config  # TensorFlow: only with data

        resolved.data = filled_data_config(resolved.data)
    for key, value in overrides:
        apply_override(resolved, key, value)
    if "data" in resolved:
        resolved.data = check_data_config(resolved.data)
    _check_values(resolved)
    return resolved


def _check_values(resolved: ml_collections.ConfigDict) -> None:
    """Stops, with one sentence, at a value no run can mean (before any data or compile)."""
    for name, value, least in (
        ("batch_size", resolved.batch_size, 1),
        ("eval_batch_size", resolved.eval_batch_size, 1),
        ("num_epochs", resolved.num_epochs, 1),
        ("checkpoint.keep", resolved.checkpoint.keep, 1),
        ("checkpoint.every_epochs", resolved.checkpoint.every_epochs, 1),
        ("checkpoint.every_steps", resolved.checkpoint.every_steps, 0),
        ("log_every_steps", resolved.log_every_steps, 0),
        ("steps_per_dispatch", resolved.steps_per_dispatch, 1),
        ("feature_views", resolved.feature_views, 1),
        ("train_per_class", resolved.train_per_class, 0),
        ("peer_timeout_s", resolved.peer_timeout_s, 1),
    ):
        if value < least:
            raise ValueError(f"config.{name} is {value}: it must be at least {least}.")
    lr = resolved.optimizer.learning_rate
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(
            f"config.optimizer.learning_rate is {lr}: it must be a positive number (a schedule scales it from there; "
            "to leave weights alone, freeze them with config.optimizer.frozen)."
        )
    if resolved.feature_views > 1 and not resolved.cache_features:
        raise ValueError(
            f"config.feature_views={resolved.feature_views} counts augmented copies of cached features, but "
            "config.cache_features is off: set config.cache_features=True, or feature_views=1."
        )
    _check_model(resolved)
    if resolved.train_per_class and resolved.cache_features and resolved.feature_views > 1:
        raise ValueError(
            f"config.train_per_class={resolved.train_per_class} draws photos from one cached view of the "
            f"training split, not {resolved.feature_views} augmented copies: set config.feature_views=1, or "
            "train_per_class=0."
        )
    _check_folds(resolved)
    if resolved.monitor.mode not in ("min", "max"):
        raise ValueError(f"config.monitor.mode is {resolved.monitor.mode!r}: use 'min' or 'max'.")
    if resolved.test_with not in ("best", "last"):
        raise ValueError(f"config.test_with is {resolved.test_with!r}: use 'best' or 'last'.")
    # Names are checked now, before any data is prepared or model compiled.
    make_task(resolved.task, resolved.loss)
    if resolved.optimizer.name not in OPTIMIZERS:
        raise ValueError(
            f"Unknown config.optimizer.name {resolved.optimizer.name!r}: use one of {', '.join(OPTIMIZERS)}."
        )
    if resolved.optimizer.schedule not in SCHEDULES:
        raise ValueError(
            f"Unknown config.optimizer.schedule {resolved.optimizer.schedule!r}: use one of {', '.join(SCHEDULES)}."
        )


def _check_folds(config: ml_collections.ConfigDict) -> None:
    folds, fold = config.cv_folds, config.cv_fold
    if not folds:
        return
    if folds < 2 or not 0 <= fold < folds:
        raise ValueError(
            f"config.cv_folds={folds} and config.cv_fold={fold}: cross-validation needs at least 2 folds and a "
            "fold from 0 to cv_folds - 1 (cv_folds=0 turns it off)."
        )
    if not config.cache_features or config.train_per_class:
        raise ValueError(
            "config.cv_folds splits the cached features of every training photo: set config.cache_features=True "
            "and config.train_per_class=0, or cv_folds=0."
        )
    opt = config.optimizer
    if opt.schedule != "constant" or opt.warmup_epochs:
        raise ValueError(
            f"config.cv_folds trains on {folds - 1}/{folds} of the training photos, so a {opt.schedule!r} schedule "
            "laid out in epochs of all of them would not end where it does in the full run: cross-validate "
            "with config.optimizer.schedule='constant' and warmup_epochs=0."
        )


def _check_model(resolved: ml_collections.ConfigDict) -> None:
    """The model's arguments (the module is built, nothing is initialised) and its number of classes."""
    if "model" in resolved:
        from jaxvision.train.engine import build_model  # the module only: misspelt arguments stop here

        build_model(resolved.model)
    num_classes = (resolved.get("model") or {}).get("num_classes")
    if num_classes is not None and num_classes < make_task(resolved.task, resolved.loss).min_classes:
        raise ValueError(
            f"config.model.num_classes is {num_classes}, and a softmax over one class is 1 whatever the image, so "
            "nothing would be learnt: give at least two classes, or use task='multilabel' for one yes/no label."
        )
