"""Small building blocks shared by the models, with Keras's defaults.

Both papers trained Keras models, so the layers here start from Keras's defaults:
Glorot-uniform kernels, zero biases, 'same' 3x3 convolutions, 2x2 max pooling and
nearest-neighbour 2x upsampling (Keras `UpSampling2D`'s default).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any

# Keras's default initialisers (Conv2D / Dense): glorot_uniform kernels, zero biases.
kernel_init = nn.initializers.glorot_uniform()
bias_init = nn.initializers.zeros


def conv3x3(features: int, *, name: str, dtype: Dtype = jnp.float32,
            use_bias: bool = True) -> nn.Conv:
    """A 3x3 'same' convolution with Keras's initialisers."""
    return nn.Conv(features, (3, 3), padding='SAME', use_bias=use_bias,
                   kernel_init=kernel_init, bias_init=bias_init, dtype=dtype, name=name)


def dense(features: int, *, name: str, dtype: Dtype = jnp.float32) -> nn.Dense:
    """A dense layer with Keras's initialisers."""
    return nn.Dense(features, kernel_init=kernel_init, bias_init=bias_init, dtype=dtype,
                    name=name)


def max_pool2(x):
    """Keras `MaxPooling2D((2, 2))`: 2x2 window, stride 2, 'valid'."""
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')


def upsample2(x):
    """Keras `UpSampling2D((2, 2))`: nearest-neighbour 2x upsampling of an NHWC tensor."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def flatten(x):
    """Flatten everything but the batch axis (Keras `Flatten`, channels-last order)."""
    return x.reshape((x.shape[0], -1))
