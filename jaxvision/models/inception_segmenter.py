"""A foreground segmenter on InceptionV3's ImageNet features (paper B's future work, for masks).

`InceptionSegmenter` resizes its input (paper B's 64x64, here RGB) to `backbone_size` (InceptionV3
needs at least 75x75), runs InceptionV3 (submodule `backbone`, whose weights
`jaxvision.weights.pretrained` fills with ImageNet's) up to its 'mixed7' block, and decodes: the
mixed7 activations (1/16 of the backbone's side) are resized to mixed2's grid (1/8),
concatenated with them and convolved, then the same with the stem's (1/4), then resized to the
input's size and convolved twice more, the last time to one channel of mask logits. The output
has the input's size, so the masks and metrics are those of the paper's segmenter.

Batch norm of the backbone stays in inference mode unless `train_batch_norm` (a few hundred
images give poor batch statistics); the whole network is trained, the decoder is new.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.inception_v3 import InceptionV3
from jaxvision.models.layers import conv3x3

Dtype = Any


def _resize(x, height: int, width: int):
    return jax.image.resize(x, (x.shape[0], height, width, x.shape[-1]), method="bilinear")


class InceptionSegmenter(nn.Module):
    """InceptionV3's encoder and a small decoder to 1-channel mask logits at the input's size.

    Attributes:
      backbone_size: side the input is resized to for InceptionV3 (at least 75).
      decoder_filters: filters of the three decoder convolutions.
      train_batch_norm: let the backbone's batch norm use batch statistics in training.
      last_pool: InceptionV3's last pool ('avg' Keras, 'max' the 2015 weights); it does not
        reach the outputs (the decoder stops at mixed7), but names the graph of the weights.
    """

    backbone_size: int = 139
    decoder_filters: Sequence[int] = (128, 64, 32)
    train_batch_norm: bool = False
    last_pool: str = "avg"
    axis_name: str | None = None
    dtype: Dtype = jnp.float32

    head_names = ("decoder_conv_0", "decoder_conv_1", "decoder_conv_2", "logits")
    pretrained_scope = "backbone"  # where jaxvision.weights.pretrained puts the ImageNet weights

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"InceptionSegmenter takes NHWC RGB images, got shape {x.shape}.")
        height, width = x.shape[1:3]
        size = self.backbone_size
        backbone = InceptionV3(
            include_top=False,
            endpoints=True,
            train_batch_norm=self.train_batch_norm,
            last_pool=self.last_pool,
            axis_name=self.axis_name,
            dtype=self.dtype,
            name="backbone",
        )
        found = backbone(_resize(jnp.asarray(x, self.dtype), size, size), train=train)
        y = found["mixed7"]
        for i, skip in enumerate((found["mixed2"], found["stem"])):
            y = jnp.concatenate([_resize(y, *skip.shape[1:3]), skip], axis=-1)
            y = nn.relu(conv3x3(self.decoder_filters[i], name=f"decoder_conv_{i}", dtype=self.dtype)(y))
        y = _resize(y, height, width)
        y = nn.relu(conv3x3(self.decoder_filters[2], name="decoder_conv_2", dtype=self.dtype)(y))
        return jnp.asarray(conv3x3(1, name="logits", dtype=self.dtype)(y), jnp.float32)
