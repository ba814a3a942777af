"""Losses, written out explicitly so that every number can be checked by hand.

Conventions: a loss takes logits (or probabilities where its name says so) and targets of the
same shape (one-hot, multi-hot, probabilities or masks) and returns one value per example, a
`[batch]` array; the caller reduces over the batch (and over padding). Reductions inside an
example are means over every non-batch axis, as Keras does, so that numbers are comparable with
the papers' Keras logs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxvision.paths import path_str, under

Array = jax.Array


def _per_example_mean(x: Array) -> Array:
    return jnp.mean(x, axis=tuple(range(1, x.ndim))) if x.ndim > 1 else x


def _per_example_sum(x: Array) -> Array:
    return jnp.sum(x, axis=tuple(range(1, x.ndim))) if x.ndim > 1 else x


# --- softmax (paper A, eq. 1-5) -------------------------------------------------------------


def _softmax_forward(z: Array, axis: int) -> Array:
    # Shifting by the max leaves eq. 1 unchanged and keeps exp() from overflowing.
    e = jnp.exp(z - jnp.max(z, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _softmax(z: Array, axis: int) -> Array:
    return _softmax_forward(z, axis)


def _softmax_fwd(z: Array, axis: int) -> tuple[Array, Array]:
    y = _softmax_forward(z, axis)
    return y, y


def _softmax_bwd(axis: int, y: Array, g: Array) -> tuple[Array]:
    # Vector-Jacobian product from the hand-derived Jacobian (eq. 4-5):
    #   (g^T J)_j = sum_i g_i dy_i/dz_j = g_j y_j (1 - y_j) + sum_{i != j} g_i (-y_i y_j)
    #             = y_j g_j - y_j sum_i g_i y_i,
    # which costs O(C) per example instead of building the C x C matrix.
    return (y * (g - jnp.sum(g * y, axis=axis, keepdims=True)),)


_softmax.defvjp(_softmax_fwd, _softmax_bwd)


def softmax(z: Array, axis: int = -1) -> Array:
    """Softmax y_c = exp(z_c) / sum_d exp(z_d) (paper A, eq. 1), max-shifted for stability.

    Its gradient is not autodiff's: the backward pass applies the Jacobian of eq. 3-5.
    """
    return _softmax(z, axis)


def softmax_jacobian(z: Array) -> Array:
    """The explicit `[..., C, C]` Jacobian J[i, j] = dy_i/dz_j of the softmax over the last axis.

    Diagonal: y_i (1 - y_i) (eq. 4); off-diagonal: -y_i y_j (eq. 5).
    """
    y = _softmax_forward(z, -1)
    return jnp.eye(y.shape[-1], dtype=y.dtype) * y[..., :, None] - y[..., :, None] * y[..., None, :]


def log_softmax(z: Array, axis: int = -1) -> Array:
    """log softmax(z), computed as z - max - log sum exp(z - max) so it never takes log(0)."""
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


# --- cross-entropies ---------------------------------------------------------------------


def softmax_cross_entropy(logits: Array, targets: Array) -> Array:
    """Categorical cross-entropy -sum_c t_c log softmax(z)_c over the last axis.

    `targets` are one-hot or any probability vectors; the gradient w.r.t. the logits is
    softmax(z) - t whenever the targets sum to one.
    """
    return -jnp.sum(targets * log_softmax(logits), axis=-1)


def sigmoid_binary_cross_entropy(logits: Array, targets: Array) -> Array:
    """Binary cross-entropy of sigmoid(logits), averaged over every non-batch axis (Keras).

    Uses max(z, 0) - z t + log(1 + exp(-|z|)), which is exact and finite for any finite z.
    """
    per_element = jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    return _per_example_mean(per_element)


def binary_cross_entropy(probs: Array, targets: Array, eps: float = 1e-7) -> Array:
    """Binary cross-entropy on probabilities, clipped to [eps, 1 - eps] as Keras does.

    Applied to softmax outputs this is paper A's loss: every one of the C outputs is scored as
    an independent yes/no, so the loss is averaged over the C classes (Keras' mean over the last
    axis), not summed as categorical cross-entropy is.
    """
    p = jnp.clip(probs, eps, 1.0 - eps)
    per_element = -(targets * jnp.log(p) + (1.0 - targets) * jnp.log(1.0 - p))
    return _per_example_mean(per_element)


# --- segmentation and reconstruction ---------------------------------------------------------


def dice_loss(logits: Array, targets: Array, smooth: float = 1.0) -> Array:
    """1 - soft Dice of sigmoid(logits) against a mask, per example.

    Soft Dice = (2 sum p t + smooth) / (sum p + sum t + smooth); `smooth` keeps the loss
    defined (and 0) for an empty prediction of an empty mask.
    """
    p = jax.nn.sigmoid(logits)
    intersection = _per_example_sum(p * targets)
    total = _per_example_sum(p) + _per_example_sum(targets)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def mean_squared_error(pred: Array, target: Array) -> Array:
    """Mean of (pred - target)^2 over every non-batch axis (paper B, eq. 1)."""
    return _per_example_mean(jnp.square(pred - target))


def mean_absolute_error(pred: Array, target: Array) -> Array:
    """Mean of |pred - target| over every non-batch axis (paper B, eq. 2)."""
    return _per_example_mean(jnp.abs(pred - target))


# --- regularisation ------------------------------------------------------------------------


def l2_penalty(
    params,
    coefficient: float,
    prefixes: Sequence[str] | None = None,
    leaf_filter: Callable[[str], bool] = lambda path: path.endswith("kernel"),
) -> Array:
    """Keras-style L2 kernel regularisation: coefficient * sum of squared weights.

    Only leaves whose '/'-joined path passes `leaf_filter` (kernels, by default: biases and
    batch-norm offsets are not regularised) and, if given, starts with one of `prefixes` count.
    Returns a scalar: it belongs to the model, not to an example, so add it once per step.
    """
    total = jnp.zeros((), jnp.float32)
    for key_path, leaf in jax.tree_util.tree_leaves_with_path(params):
        path = path_str(key_path)
        if leaf_filter(path) and (prefixes is None or any(under(path, p) for p in prefixes)):
            total = total + jnp.sum(jnp.square(leaf.astype(jnp.float32)))
    return coefficient * total
