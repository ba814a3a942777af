"""Paper B's multi-label classifiers (cat, motorbike, bottle) for 128x128x3 images.

All return **logits**, one per class; the sigmoid belongs to the loss (binary cross-entropy)
and to prediction.

* `EncoderClassifier(freeze_backbone=True)` — the autoencoder's 8192-code encoder, frozen,
  + Dense(8192 -> 3): 24,579 trainable parameters (the paper's count). Load the trained
  autoencoder's `encoder` subtree into `params['encoder']`.
* `EncoderClassifier()` — the same network trained from scratch: 394,464 + 24,579 = 419,043
  trainable parameters (the paper's count).
* `DeepCNN` — 5 x [conv3x3, batch norm, ReLU, 2x2 max pool, dropout] + Dense head, with L2
  on chosen kernels. The paper gives no filter counts; ours are `DEEP_CNN_FILTERS`, and the
  L2 penalty goes on the convolutions of blocks 3-5 (`l2_blocks`), which hold 98% of the
  convolution weights. `DeepCNN.l2_kernel_paths()` lists the regularised kernels.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.autoencoder import AUTOENCODER_FILTERS, AUTOENCODER_POOLS, Encoder
from jaxvision.models.layers import BatchNorm, Dropout, conv3x3, dense, flatten, max_pool2

Dtype = Any

NUM_CLASSES = 3  # cat, motorbike, bottle
DEEP_CNN_FILTERS = (32, 64, 128, 256, 256)


class EncoderClassifier(nn.Module):
    """Autoencoder encoder + flatten + Dense(num_classes) logits.

    `freeze_backbone=True` stops gradients at the codes (use `trainable_mask` for the
    optimizer too); the encoder has no batch norm or dropout, so `train` changes nothing.
    """

    filters: Sequence[int] = AUTOENCODER_FILTERS[8192]
    pools: int = AUTOENCODER_POOLS
    num_classes: int = NUM_CLASSES
    freeze_backbone: bool = False
    dtype: Dtype = jnp.float32

    head_names = ("head",)

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Logits of images, or of their flattened codes `[B, codes]` (a frozen encoder's head
        trained on cached codes, jaxvision.train.features)."""
        del train
        codes = x if x.ndim == 2 else flatten(Encoder(self.filters, self.pools, dtype=self.dtype, name="encoder")(x))
        if self.freeze_backbone:
            codes = jax.lax.stop_gradient(codes)
        return jnp.asarray(dense(self.num_classes, name="head", dtype=self.dtype)(codes), jnp.float32)

    @nn.nowrap
    def backbone(self):
        """(module, its parameters' scope) computing the features the head reads."""
        return Encoder(self.filters, self.pools, dtype=self.dtype), "encoder"


class DeepCNN(nn.Module):
    """5 x [conv3x3 'same', batch norm, ReLU, max pool 2x2, dropout] + flatten + Dense logits.

    Batch norm has Keras's defaults (momentum 0.99, epsilon 1e-3) and uses batch statistics
    (and updates its running averages) only with `train=True`; dropout is active only with
    `train=True` (pass `rngs={'dropout': key}`).

    Attributes:
      filters: filters of the five blocks.
      dropout: dropout rate after every block.
      l2_blocks: 0-based indices of the blocks whose convolution kernel gets L2.
      axis_name: pmap axis for synchronised batch statistics, or None.
    """

    filters: Sequence[int] = DEEP_CNN_FILTERS
    dropout: float = 0.25
    num_classes: int = NUM_CLASSES
    l2_blocks: Sequence[int] = (2, 3, 4)
    axis_name: str | None = None
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = jnp.asarray(x, self.dtype)
        for i, f in enumerate(self.filters):
            x = conv3x3(f, name=f"conv_{i}", dtype=self.dtype)(x)
            x = BatchNorm(
                use_running_average=not train,
                momentum=0.99,
                epsilon=1e-3,
                axis_name=self.axis_name if train else None,
                dtype=self.dtype,
                name=f"bn_{i}",
            )(x)
            x = max_pool2(nn.relu(x))
            x = Dropout(self.dropout, deterministic=not train, name=f"dropout_{i}")(x)
        return jnp.asarray(dense(self.num_classes, name="head", dtype=self.dtype)(flatten(x)), jnp.float32)

    @nn.nowrap
    def l2_kernel_paths(self) -> tuple[tuple[str, ...], ...]:
        """Paths in `params` of the kernels that get L2 (for the trainer's `l2_penalty`)."""
        for i in self.l2_blocks:
            if not 0 <= i < len(self.filters):
                raise ValueError(f"l2_blocks holds {i}, but the DeepCNN has {len(self.filters)} blocks (0-based).")
        return tuple((f"conv_{i}", "kernel") for i in sorted(set(self.l2_blocks)))
