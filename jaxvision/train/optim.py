"""Optimizers and learning-rate schedules from `config.optimizer`.

Fields (defaults in `jaxvision.train.config.default_config`):
  name            'adam' | 'adamax' (paper A) | 'rmsprop' (paper B autoencoder) | 'sgd'
  learning_rate   peak learning rate
  schedule        'constant' | 'cosine' (to 0 at the last step) | 'exponential' (times
                  decay_rate every epoch) | 'piecewise' (times decay_rate at each epoch listed
                  in boundaries)
  warmup_epochs   linear warm-up from 0 before the schedule (fractions allowed)
  b1, b2, eps     Adam / Adamax moments; eps defaults to Keras' 1e-7
  rho             RMSprop decay of the squared-gradient average (Keras' rho)
  momentum, nesterov   SGD (and RMSprop when momentum > 0)
  clip_norm       clip the global gradient norm (0: off)
  l2              Keras kernel_regularizer=l2(x): adds x * sum(w^2) over the kernels of
                  `models.l2_mask` to the loss (in the train step, not here; see engine.py)
  frozen          '/'-joined parameter path prefixes that are not updated (transfer learning),
                  on top of what the model itself freezes (`freeze_backbone=True`)
  backbone_lr_scale  the learning rate of every parameter outside the model's head
                  (`model.head_names`) is the schedule's times this (fine-tuning a pretrained
                  backbone more gently than its new head: e.g. 0.1)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import ml_collections
import optax

from jaxvision.models import trainable_mask
from jaxvision.paths import path_str, under

OPTIMIZERS = ("adam", "adamax", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "exponential", "piecewise")


def make_schedule(opt: ml_collections.ConfigDict, steps_per_epoch: int, num_epochs: int) -> Callable[[int], float]:
    """The learning rate as a function of the global step."""
    lr, total = opt.learning_rate, steps_per_epoch * num_epochs
    warmup = int(round(opt.warmup_epochs * steps_per_epoch))
    if opt.schedule == "constant":
        main = optax.constant_schedule(lr)
    elif opt.schedule == "cosine":
        main = optax.cosine_decay_schedule(lr, max(total - warmup, 1))
    elif opt.schedule == "exponential":
        main = optax.exponential_decay(lr, steps_per_epoch, opt.decay_rate, staircase=True)
    elif opt.schedule == "piecewise":
        main = optax.piecewise_constant_schedule(
            lr, {int(e * steps_per_epoch) - warmup: opt.decay_rate for e in opt.boundaries}
        )
    else:
        raise ValueError(f"Unknown config.optimizer.schedule {opt.schedule!r}: use one of {', '.join(SCHEDULES)}.")
    if warmup == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def _base_optimizer(opt: ml_collections.ConfigDict, schedule) -> optax.GradientTransformation:
    if opt.name == "adam":
        return optax.adam(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps)
    if opt.name == "adamax":
        return optax.adamax(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps)
    if opt.name == "rmsprop":
        # Keras' RMSprop: eps inside the square root, no centring, optional momentum.
        return optax.rmsprop(schedule, decay=opt.rho, eps=opt.eps, momentum=opt.momentum or None)
    if opt.name == "sgd":
        return optax.sgd(schedule, momentum=opt.momentum or None, nesterov=opt.nesterov)
    raise ValueError(f"Unknown config.optimizer.name {opt.name!r}: use one of {', '.join(OPTIMIZERS)}.")


def _frozen_mask(params, frozen: tuple[str, ...]):
    """True where a parameter is trainable given the config's frozen prefixes (checked)."""
    paths = [path_str(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    for prefix in frozen:
        if not any(under(p, prefix) for p in paths):
            top = sorted({p.split("/")[0] for p in paths})
            raise ValueError(
                f"config.optimizer.frozen names {prefix!r}, which matches no parameter: use a "
                f"'/'-joined path prefix such as one of {', '.join(top)}."
            )
    return jax.tree_util.tree_map_with_path(lambda path, _: not any(under(path_str(path), f) for f in frozen), params)


def _labels(model, params, frozen: tuple[str, ...], scaled: bool):
    """'frozen', 'backbone' (learning rate scaled) or 'trainable' for every parameter."""
    trainable = jax.tree.map(lambda a, b: a and b, trainable_mask(model, params), _frozen_mask(params, frozen))
    head = set(getattr(model, "head_names", ()))
    if scaled and not head:
        raise ValueError(
            f"config.optimizer.backbone_lr_scale needs a model with a head ({type(model).__name__} "
            "names none): leave it at 1."
        )

    def label(path, train: bool) -> str:
        if not train:
            return "frozen"
        return "backbone" if scaled and str(path[0].key) not in head else "trainable"

    return jax.tree_util.tree_map_with_path(label, trainable)


def moving(opt: ml_collections.ConfigDict, model, params):
    """A pytree of bools like `params`: True where the optimizer of `opt` can change a parameter."""
    return jax.tree.map(lambda label: label != "frozen", _labels(model, params, tuple(opt.frozen), False))


def make_optimizer(
    opt: ml_collections.ConfigDict, model, params, steps_per_epoch: int, num_epochs: int
) -> tuple[optax.GradientTransformation, Callable[[int], float]]:
    """Returns (optax transformation, learning-rate schedule) for `config.optimizer`.

    Frozen parameters (the model's own choice, e.g. a frozen backbone, and the prefixes in
    `opt.frozen`) get no update at all, not even from momentum, and no optimizer state; the
    gradient norm that `clip_norm` bounds is that of the trained parameters.
    """
    schedule = make_schedule(opt, steps_per_epoch, num_epochs)
    scaled = opt.backbone_lr_scale != 1.0
    labels = _labels(model, params, tuple(opt.frozen), scaled)
    used = set(jax.tree.leaves(labels))
    groups = {"trainable": _base_optimizer(opt, schedule), "frozen": optax.set_to_zero()}
    if scaled:
        groups["backbone"] = _base_optimizer(opt, lambda step: schedule(step) * opt.backbone_lr_scale)
    tx = (
        groups["trainable"]
        if used == {"trainable"}
        else optax.multi_transform({k: v for k, v in groups.items() if k in used}, labels)
    )
    if opt.clip_norm:
        clip = optax.clip_by_global_norm(opt.clip_norm)
        if "frozen" in used:  # frozen gradients must not count towards the norm
            clip = optax.chain(
                optax.multi_transform(
                    {k: optax.set_to_zero() if k == "frozen" else optax.identity() for k in used}, labels
                ),
                clip,
            )
        tx = optax.chain(clip, tx)
    return tx, schedule
