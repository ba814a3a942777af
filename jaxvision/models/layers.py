"""Small building blocks shared by the models, with Keras's defaults.

Both papers trained Keras models, so the layers here start from Keras's defaults:
Glorot-uniform kernels, zero biases, 'same' 3x3 convolutions, 2x2 max pooling and
nearest-neighbour 2x upsampling (Keras `UpSampling2D`'s default).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.cpu_conv import conv_general_dilated

Dtype = Any

# Keras's default initialisers (Conv2D / Dense): glorot_uniform kernels, zero biases.
kernel_init = nn.initializers.glorot_uniform()
bias_init = nn.initializers.zeros


def conv3x3(features: int, *, name: str, dtype: Dtype = jnp.float32,
            use_bias: bool = True) -> nn.Conv:
    """A 3x3 'same' convolution with Keras's initialisers (and a fast CPU kernel gradient)."""
    return nn.Conv(features, (3, 3), padding='SAME', use_bias=use_bias,
                   kernel_init=kernel_init, bias_init=bias_init, dtype=dtype, name=name,
                   conv_general_dilated=conv_general_dilated)


def dense(features: int, *, name: str, dtype: Dtype = jnp.float32) -> nn.Dense:
    """A dense layer with Keras's initialisers."""
    return nn.Dense(features, kernel_init=kernel_init, bias_init=bias_init, dtype=dtype,
                    name=name)


def max_pool2(x):
    """Keras `MaxPooling2D((2, 2))`: 2x2 window, stride 2, 'valid' (odd sizes lose the last row/column).

    A reshape + max rather than `nn.max_pool`: XLA differentiates `reduce_window` with
    `select_and_scatter`, a slow loop on CPU, and a reshaped max with an elementwise select
    (1.1-1.3x the whole step, less memory; benchmarks/RESULTS.md). The forward is identical;
    on a tie inside a window the gradient is split between the maxima instead of going to one
    (after a ReLU such ties are zeros, whose gradient the ReLU zeroes anyway).
    """
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def upsample2(x):
    """Keras `UpSampling2D((2, 2))`: nearest-neighbour 2x upsampling of an NHWC tensor."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def flatten(x):
    """Flatten everything but the batch axis (Keras `Flatten`, channels-last order)."""
    return x.reshape((x.shape[0], -1))
