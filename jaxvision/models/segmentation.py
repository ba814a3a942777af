"""Paper B's binary foreground segmenter for 64x64x1 grayscale images, and a U-Net variant.

`Segmenter` (the paper): encoder conv3x3 'same' + ReLU blocks of 256, 128, 64, 32 filters with
a 2x2 max pool after the first three and a dropout of 0.5 between the third convolution and its
pool; decoder conv3x3 + ReLU of 32, 64, 128 filters, each followed by a 2x upsampling (the
paper's "32, 64 and 128 filters"), then a final 3x3 convolution. The paper's final layer has
3 filters and a sigmoid (an RGB-shaped output); ours has **one channel of logits**, because the
target is a single binary mask and the sigmoid belongs to the loss (BCE or Dice) and to
prediction. Output: (N, 64, 64, 1) logits.

`UNet` is the same network with skip connections: after each upsampling the encoder's
activation of the same resolution (taken before its pool) is concatenated before the next
convolution, the usual U-Net wiring. Same filters, same dropout, so the two differ only by
the skips; pass other `filters` for a wider/narrower net.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.layers import conv3x3, max_pool2, upsample2

Dtype = Any

SEGMENTER_FILTERS = (256, 128, 64, 32)


class Segmenter(nn.Module):
    """Encoder-decoder returning 1-channel mask logits at the input's resolution.

    Attributes:
      filters: encoder filters; the decoder uses them reversed without the first.
      dropout: rate of the dropout before the last pool (active only with `train=True`;
        pass `rngs={'dropout': key}`).
      skip_connections: concatenate same-resolution encoder activations in the decoder.
      out_channels: 1 for a binary mask.
    """

    filters: Sequence[int] = SEGMENTER_FILTERS
    dropout: float = 0.5
    skip_connections: bool = False
    out_channels: int = 1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        n = len(self.filters)
        if n < 2:
            raise ValueError(f"A segmenter needs at least 2 encoder blocks, got {tuple(self.filters)}.")
        pools = n - 1
        if x.shape[1] % 2**pools or x.shape[2] % 2**pools:
            raise ValueError(f"Input height and width must be multiples of {2**pools}, got {x.shape[1]}x{x.shape[2]}.")
        x = jnp.asarray(x, self.dtype)
        skips = []
        for i, f in enumerate(self.filters):
            x = nn.relu(conv3x3(f, name=f"encoder_conv_{i}", dtype=self.dtype)(x))
            if i == pools - 1:  # between the third convolution and its pool (paper)
                x = nn.Dropout(self.dropout, deterministic=not train, name="dropout")(x)
            if i < pools:
                skips.append(x)
                x = max_pool2(x)
        decoder_filters = list(reversed(self.filters))[:-1]  # (32, 64, 128)
        for j, f in enumerate(decoder_filters):
            x = nn.relu(conv3x3(f, name=f"decoder_conv_{j}", dtype=self.dtype)(x))
            x = upsample2(x)
            if self.skip_connections:
                x = jnp.concatenate([x, skips[pools - 1 - j]], axis=-1)
        x = conv3x3(self.out_channels, name="logits", dtype=self.dtype)(x)
        return jnp.asarray(x, jnp.float32)


class UNet(Segmenter):
    """`Segmenter` with U-Net skip connections (the stronger option)."""

    skip_connections: bool = True
