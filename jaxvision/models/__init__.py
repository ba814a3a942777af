"""The models of both papers, as `flax.linen` modules called `model.apply(variables, x, train=...)`.

| name (build_model)          | module                                  | input       | output            |
|-----------------------------|-----------------------------------------|-------------|-------------------|
| inception_v3                | InceptionV3 (Keras-exact, paper A)      | 299x299x3*  | logits            |
| autoencoder                 | ConvAutoencoder, code_size 2048/4096/8192 | 128x128x3 | sigmoid image     |
| frozen_encoder_classifier   | EncoderClassifier(freeze_backbone=True) | 128x128x3   | 3 logits          |
| encoder_classifier          | EncoderClassifier (from scratch)        | 128x128x3   | 3 logits          |
| deep_cnn                    | DeepCNN                                 | 128x128x3   | 3 logits          |
| segmenter                   | Segmenter (paper B)                     | 64x64x1     | 64x64x1 logits    |
| unet                        | UNet (skip connections)                 | 64x64x1     | 64x64x1 logits    |
| inception_segmenter         | InceptionSegmenter (ImageNet encoder)   | 64x64x3     | 64x64x1 logits    |

(*) any size from 75x75. Parameter counts against the papers: docs/models.md.

Fine-tuning: `trainable_mask(model, params)` says which leaves the optimizer may change
(everything, or only the head when the model has `freeze_backbone=True`), and
`masked_optimizer(tx, mask)` turns an optax optimizer into one that leaves the rest exactly
unchanged. `l2_mask(model, params)` marks the kernels that get L2 regularisation (its
docstring is the one statement of that scope).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from typing import Any, Callable, Iterable

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxvision.models.autoencoder import (
    AUTOENCODER_FILTERS,
    ConvAutoencoder,
    Decoder,
    Encoder,
    autoencoder,
    code_shape,
    code_size,
)
from jaxvision.models.classifiers import DEEP_CNN_FILTERS, DeepCNN, EncoderClassifier
from jaxvision.models.inception_segmenter import InceptionSegmenter
from jaxvision.models.inception_v3 import InceptionV3, preprocess_input
from jaxvision.models.segmentation import SEGMENTER_FILTERS, Segmenter, UNet
from jaxvision.paths import path_str, under

__all__ = [
    "AUTOENCODER_FILTERS",
    "DEEP_CNN_FILTERS",
    "SEGMENTER_FILTERS",
    "ConvAutoencoder",
    "DeepCNN",
    "Decoder",
    "Encoder",
    "EncoderClassifier",
    "InceptionSegmenter",
    "InceptionV3",
    "Segmenter",
    "UNet",
    "autoencoder",
    "build_model",
    "code_shape",
    "code_size",
    "count_params",
    "l2_mask",
    "masked_optimizer",
    "preprocess_input",
    "trainable_mask",
    "MODELS",
]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "inception_v3": InceptionV3,
    "autoencoder": autoencoder,
    "frozen_encoder_classifier": functools.partial(EncoderClassifier, freeze_backbone=True),
    "encoder_classifier": EncoderClassifier,
    "deep_cnn": DeepCNN,
    "segmenter": Segmenter,
    "unet": UNet,
    "inception_segmenter": InceptionSegmenter,
}


def _arguments(builder) -> set[str]:
    """The keyword arguments `builder` takes; a factory's `**kwargs` go to the module it returns."""
    parameters = inspect.signature(builder).parameters.values()
    names = {p.name for p in parameters if p.kind is not p.VAR_KEYWORD} - {"parent", "name"}
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        names |= _arguments(typing.get_type_hints(builder)["return"])
    return names


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """The model registered as `name` (see the table above), built with `kwargs`.

    `build_model('autoencoder', code_size=2048)`, `build_model('inception_v3', num_classes=102,
    freeze_backbone=True)`, ... Tuples may come as lists (from a config).
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}: choose one of {', '.join(sorted(MODELS))}.")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    accepted = _arguments(MODELS[name])
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, accepted, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"Model {name!r} does not take the argument{'s' if len(unknown) > 1 else ''} {', '.join(hints)}: "
            f"it takes {', '.join(sorted(accepted))}."
        )
    try:
        return MODELS[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"Model {name!r} was given arguments it cannot use ({e}).") from None


def trainable_mask(model: nn.Module, params, *, trainable: Iterable[str] | Callable[[str], bool] | None = None):
    """A pytree of bools shaped like `params`: True where the optimizer may update.

    By default everything is trainable, except that a model with `freeze_backbone=True`
    (InceptionV3, EncoderClassifier) trains only its head (`model.head_names`).
    `trainable` overrides this: '/'-joined path prefixes (e.g. `['predictions', 'conv2d_93']`)
    or a predicate on the '/'-joined path of each leaf.
    """
    if trainable is None:
        if getattr(model, "freeze_backbone", False):
            trainable = tuple(getattr(model, "head_names", ()))
        else:
            return jax.tree.map(lambda _: True, params)
    if callable(trainable):
        predicate = trainable
    else:
        prefixes = tuple(p.strip("/") for p in trainable)
        predicate = lambda s: any(under(s, p) for p in prefixes)
    return jax.tree_util.tree_map_with_path(lambda path, _: bool(predicate(path_str(path))), params)


def masked_optimizer(tx: optax.GradientTransformation, mask) -> optax.GradientTransformation:
    """`tx` on the leaves where `mask` is True; zero updates (and no optimizer state) elsewhere.

    Unlike `optax.masked`, which passes the raw gradients of masked-out leaves through as
    updates, this leaves frozen parameters exactly unchanged.
    """
    labels = jax.tree.map(lambda m: "trainable" if m else "frozen", mask)
    return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()}, labels)


def l2_mask(model: nn.Module, params):
    """A pytree of bools shaped like `params`: True on the kernels that `config.optimizer.l2`
    regularises. The one definition of its scope: the kernels a model names in
    `l2_kernel_paths()` (DeepCNN: its last three), or every kernel of a model that names none.
    """
    if not hasattr(model, "l2_kernel_paths"):
        return jax.tree_util.tree_map_with_path(lambda path, _: path_str(path).endswith("kernel"), params)
    paths = {"/".join(p) for p in model.l2_kernel_paths()}
    mask = jax.tree_util.tree_map_with_path(lambda path, _: path_str(path) in paths, params)
    found = {path_str(p) for p, m in jax.tree_util.tree_flatten_with_path(mask)[0] if m}
    if found != paths:
        raise ValueError(f"L2 kernels {sorted(paths - found)} are not in the parameters.")
    return mask


def count_params(tree) -> int:
    """Number of scalars in a pytree of arrays or `jax.ShapeDtypeStruct`s."""
    return int(sum(np.prod(x.shape, dtype=np.int64) for x in jax.tree.leaves(tree)))
