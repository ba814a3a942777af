"""The alternatives to pieces of `jaxvision.models` that the benchmarks time against them.

Each function is a drop-in for one building block (named in its docstring);
`benchmarks/ablations.py` swaps it in inside a worker process and times the real model with
it. RESULTS.md holds the measured effect of each. The models' own versions are
`jaxvision.models.cpu_conv.conv_general_dilated` (XLA's `lax.conv_general_dilated` is its
alternative) and `jaxvision.models.layers.{max_pool2, upsample2}`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def max_pool2_reduce_window(x):
    """For `layers.max_pool2`: flax's `nn.max_pool` (XLA `reduce_window`), what the models used
    before; its gradient is XLA's `select_and_scatter`."""
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')


def upsample2_broadcast(x):
    """For `layers.upsample2`: nearest 2x upsampling as one broadcast + reshape instead of two
    `jnp.repeat`s, each of which materialises its result."""
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


def upsample2_resize(x):
    """For `layers.upsample2`: `jax.image.resize(..., 'nearest')`, the usual first choice."""
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), 'nearest')
