"""Paper B's convolutional autoencoder for 128x128x3 images, with codes of 2048/4096/8192.

Encoder: a list of blocks `conv3x3 'same' + ReLU`, the first `pools` of them followed by a
2x2 max pool. Decoder (the mirror): one `conv3x3 + ReLU` per encoder block but the last, with
the filters in reverse order and a 2x upsampling after each of the last `pools` of them, then
a 3x3 convolution to the image channels and a sigmoid.

**The choice of filter lists (paper B is not self-consistent).** The paper lists six encoder
blocks of 256, 128, 64, 32, 16, 8 filters "with max pooling", says the deepest net has 2048
codes and that removing one, then two blocks gives 4096, then 8192 codes, and reports for the
8192-code encoder retrained as a classifier "419,043 trainable parameters and 3 sets of
convolutional, relu and maxpooling layers". Pooling after all six blocks would leave 2x2x8 =
32 codes. What fits every number is **three max pools** (128 -> 16) with the blocks after the
third unpooled:

    code 8192 = 16x16x32: filters (256, 128, 64, 32)          <- encoder in the paper's classifiers
    code 4096 = 16x16x16: filters (256, 128, 64, 32, 16)
    code 2048 = 16x16x8:  filters (256, 128, 64, 32, 16, 8)  <- the paper's six-block list

The 8192 encoder then holds 7,168 + 295,040 + 73,792 + 18,464 = 394,464 parameters, and with
a Dense(8192 -> 3) head (24,579, the paper's frozen-encoder count) 419,043, the paper's
from-scratch count, exactly. The deepest net has the fewest codes and the paper's exact filter
list; each shallower net drops the last block (here without a pool), as the paper describes.
The decoder of the 2048 net has 16, 32, 64, 128, 256 filters and a final 3-filter sigmoid
convolution, again as the paper lists.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.layers import conv3x3, max_pool2, upsample2

Dtype = Any

# code size -> encoder filters for 128x128x3 inputs (three 2x2 pools: 16x16 x last filters)
AUTOENCODER_FILTERS: dict[int, tuple[int, ...]] = {
    2048: (256, 128, 64, 32, 16, 8),
    4096: (256, 128, 64, 32, 16),
    8192: (256, 128, 64, 32),
}
AUTOENCODER_POOLS = 3
INPUT_SHAPE = (128, 128, 3)


def _check(filters: Sequence[int], pools: int):
    if not filters:
        raise ValueError("An encoder needs at least one filter count.")
    if not 0 <= pools <= len(filters) - 1:  # the decoder upsamples after len - 1 blocks
        raise ValueError(
            f"pools must be between 0 and len(filters) - 1 = {len(filters) - 1}, "
            f"got {pools} for filters {tuple(filters)}."
        )


def code_shape(
    filters: Sequence[int], pools: int = AUTOENCODER_POOLS, input_shape: Sequence[int] = INPUT_SHAPE
) -> tuple[int, int, int]:
    """Shape (H, W, C) of the code for an input of `input_shape`."""
    h, w = input_shape[0], input_shape[1]
    return h // 2**pools, w // 2**pools, filters[-1]


def code_size(filters: Sequence[int], pools: int = AUTOENCODER_POOLS, input_shape: Sequence[int] = INPUT_SHAPE) -> int:
    return math.prod(code_shape(filters, pools, input_shape))


class Encoder(nn.Module):
    """conv3x3 'same' + ReLU blocks; a 2x2 max pool after each of the first `pools` blocks.

    Parameters are named `conv_0`, `conv_1`, ... so an autoencoder's `encoder` subtree drops
    into a classifier's `encoder` unchanged.
    """

    filters: Sequence[int] = AUTOENCODER_FILTERS[8192]
    pools: int = AUTOENCODER_POOLS
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        _check(self.filters, self.pools)
        x = jnp.asarray(x, self.dtype)
        for i, f in enumerate(self.filters):
            x = nn.relu(conv3x3(f, name=f"conv_{i}", dtype=self.dtype)(x))
            if i < self.pools:
                x = max_pool2(x)
        return x


class Decoder(nn.Module):
    """The encoder's mirror; returns logits of `out_channels` channels (no sigmoid)."""

    filters: Sequence[int] = AUTOENCODER_FILTERS[8192]  # the *encoder's* filters
    pools: int = AUTOENCODER_POOLS
    out_channels: int = 3
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, z):
        _check(self.filters, self.pools)
        z = jnp.asarray(z, self.dtype)
        n = len(self.filters)
        for j, i in enumerate(range(n - 2, -1, -1)):
            z = nn.relu(conv3x3(self.filters[i], name=f"conv_{j}", dtype=self.dtype)(z))
            if i < self.pools:
                z = upsample2(z)
        return conv3x3(self.out_channels, name=f"conv_{n - 1}", dtype=self.dtype)(z)


class ConvAutoencoder(nn.Module):
    """Paper B's autoencoder. `__call__` returns the sigmoid reconstruction in [0, 1].

    Use `apply(..., method='encode')` for codes (N, H/2^pools, W/2^pools, filters[-1]) and
    `method='decode'` to map codes back to images. `code_size` variants: `autoencoder(2048)`.
    """

    filters: Sequence[int] = AUTOENCODER_FILTERS[8192]
    pools: int = AUTOENCODER_POOLS
    out_channels: int = 3
    dtype: Dtype = jnp.float32

    def setup(self):
        self.encoder = Encoder(self.filters, self.pools, dtype=self.dtype)
        self.decoder = Decoder(self.filters, self.pools, self.out_channels, dtype=self.dtype)

    def encode(self, x):
        return self.encoder(x)

    def decode_logits(self, z):
        return jnp.asarray(self.decoder(z), jnp.float32)

    def decode(self, z):
        return nn.sigmoid(self.decode_logits(z))

    def __call__(self, x, train: bool = False):
        del train  # no dropout or batch norm
        return self.decode(self.encode(x))


def autoencoder(code_size: int = 8192, filters: Sequence[int] | None = None, **kwargs) -> ConvAutoencoder:
    """The paper's autoencoder with `code_size` codes for 128x128x3 inputs (2048/4096/8192), or,
    with `filters`, the same wiring with other filter counts (a cheaper net keeps the last ones,
    which set the code's depth)."""
    if code_size not in AUTOENCODER_FILTERS:
        raise ValueError(f"code_size must be one of {sorted(AUTOENCODER_FILTERS)}, got {code_size}.")
    return ConvAutoencoder(filters=tuple(filters or AUTOENCODER_FILTERS[code_size]), pools=AUTOENCODER_POOLS, **kwargs)
