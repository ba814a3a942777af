"""InceptionV3 exactly as `keras.applications.InceptionV3` builds it (paper A's backbone).

Layer for layer the same as Keras 3.15's `keras/src/applications/inception_v3.py`:

* every convolution has no bias and is followed by batch norm (epsilon 1e-3, momentum 0.99,
  no scale, a bias/beta) and a ReLU;
* the 3x3 average pools in the mixed blocks are stride 1, 'same', and divide by the number of
  real (not padded) pixels in the window, as Keras/TensorFlow do;
* no auxiliary head, no dropout; the top is global average pooling + a dense layer;
* inputs are expected in [-1, 1]: apply `preprocess_input` (x / 127.5 - 1) to 0..255 images.

The one difference: the top returns **logits** (Keras applies the softmax inside the model);
the softmax belongs to the loss and to prediction.

Module names are the Keras layer names of a freshly built Keras model: `conv2d`, `conv2d_1`,
..., `conv2d_93`, `batch_normalization` ... `batch_normalization_93` and `predictions`, in the
order the Keras source creates them. The weights converter (`jaxvision.weights.convert`) maps Keras
layers to these names explicitly, never by the (alphabetical) order of a flattened tree.

With 1000 classes the model holds 23,817,352 parameters and 34,432 batch-norm statistics
(23,851,784 values, Keras's count).

Fine-tuning: `freeze_backbone=True` keeps every batch norm in inference mode (running
statistics are used and never updated, even with `train=True`) and stops gradients at the
pooled features, so only `predictions` learns; pair it with `jaxvision.models.trainable_mask`
for the optimizer. `train_batch_norm=False` keeps batch norm in inference mode while the whole
network learns (the usual choice when fine-tuning on a few hundred images). Given pooled
features `[B, 2048]` instead of images, the model applies only its top: a frozen backbone's
head is trained on features computed once (`jaxvision.train.features`), with the same variables.

The 2015 graph: `last_pool='max'` makes the pool branch of the last block (`mixed10`) a 3x3
stride-1 max pool, as in the TensorFlow graph of 2015 that `jaxvision.weights.pretrained`'s 'tf2015'
ImageNet weights were trained with; Keras (the default, 'avg') averages there.
"""

from __future__ import annotations

import itertools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.cpu_conv import conv_general_dilated
from jaxvision.models import layers
from jaxvision.models.layers import bias_init, kernel_init

Dtype = Any

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
NUM_CONV_BN = 94  # conv2d .. conv2d_93, each followed by a batch norm
FEATURES = 2048  # channels of the last block (mixed10)
MIN_INPUT_SIZE = 75  # Keras's minimum height/width


def preprocess_input(x):
    """Scale 0..255 pixels to [-1, 1] like `keras.applications.inception_v3.preprocess_input`."""
    return jnp.asarray(x, jnp.float32) / 127.5 - 1.0


def keras_layer_name(kind: str, index: int) -> str:
    """The auto-generated Keras name of the `index`-th layer of a kind in creation order.

    `kind` is 'conv2d' or 'batch_normalization'; index 0 has no suffix, as in Keras 3.
    """
    return kind if index == 0 else f"{kind}_{index}"


def init_head(rng, num_classes: int, features: int = FEATURES, dtype: Dtype = jnp.float32):
    """Fresh `predictions` parameters, with the same initialisers as `InceptionV3` (Glorot-uniform, zero bias)."""
    return {
        "kernel": kernel_init(rng, (features, num_classes), jnp.float32),
        "bias": bias_init(rng, (num_classes,), jnp.float32),
    }


class InceptionV3(nn.Module):
    """`keras.applications.InceptionV3` in Flax (see the module docstring).

    Attributes:
      num_classes: size of the dense top (`predictions`), used when `include_top`.
      include_top: global average pooling + dense top returning logits.
      pooling: without the top, None (4-D features), 'avg' or 'max' (2-D features).
      freeze_backbone: batch norm always in inference mode and no gradient into the backbone.
      train_batch_norm: with `train=True`, normalise with the batch's statistics and update the
        running ones (False: batch norm stays in inference mode while the weights learn).
      last_pool: the pool of the last block's pool branch, 'avg' (Keras) or 'max' (2015 graph).
      endpoints: return the activations of the stem ('stem', 1/4 of the input's side, 192
        channels), 'mixed2' (1/8, 288), 'mixed7' (1/16, 768) and 'mixed10' (1/32, 2048) as a
        dict, for dense prediction (jaxvision.models.inception_segmenter).
      axis_name: pmap axis over which training batch statistics are averaged (sync BN), or None.
      dtype: computation dtype (parameters stay float32).
    """

    num_classes: int = 1000
    include_top: bool = True
    pooling: str | None = None
    freeze_backbone: bool = False
    train_batch_norm: bool = True
    last_pool: str = "avg"
    endpoints: bool = False
    axis_name: str | None = None
    dtype: Dtype = jnp.float32

    # Top-level parameter collections that form the head (trainable when the backbone is frozen).
    head_names = ("predictions",)

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.pooling not in (None, "avg", "max"):
            raise ValueError(f"InceptionV3 pooling must be None, 'avg' or 'max', got {self.pooling!r}.")
        if self.last_pool not in ("avg", "max"):
            raise ValueError(
                f"InceptionV3 last_pool must be 'avg' (Keras) or 'max' (the 2015 graph), got {self.last_pool!r}."
            )
        if x.ndim == 2 and self.include_top and x.shape[-1] == FEATURES:
            return self._top(x)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"InceptionV3 takes NHWC images with 3 channels, got shape {x.shape}.")
        if min(x.shape[1:3]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"InceptionV3 needs images of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}, "
                f"got {x.shape[1]}x{x.shape[2]}."
            )
        bn_train = train and self.train_batch_norm and not self.freeze_backbone
        counter = itertools.count()

        def conv2d_bn(x, filters, num_row, num_col, padding="SAME", strides=(1, 1)):
            i = next(counter)
            x = nn.Conv(
                filters,
                (num_row, num_col),
                strides=strides,
                padding=padding,
                use_bias=False,
                kernel_init=kernel_init,
                dtype=self.dtype,
                conv_general_dilated=conv_general_dilated,
                name=keras_layer_name("conv2d", i),
            )(x)
            x = layers.BatchNorm(
                use_running_average=not bn_train,
                momentum=BN_MOMENTUM,
                epsilon=BN_EPSILON,
                use_scale=False,
                axis_name=self.axis_name if bn_train else None,
                dtype=self.dtype,
                name=keras_layer_name("batch_normalization", i),
            )(x)
            return nn.relu(x)

        def max_pool(x):
            return layers.max_pool(x, (3, 3), (2, 2))

        cat = lambda xs: jnp.concatenate(xs, axis=-1)
        x = jnp.asarray(x, self.dtype)

        x = conv2d_bn(x, 32, 3, 3, strides=(2, 2), padding="VALID")
        x = conv2d_bn(x, 32, 3, 3, padding="VALID")
        x = conv2d_bn(x, 64, 3, 3)
        x = max_pool(x)

        x = conv2d_bn(x, 80, 1, 1, padding="VALID")
        x = conv2d_bn(x, 192, 3, 3, padding="VALID")
        found = {"stem": x}
        x = max_pool(x)

        # mixed0, mixed1, mixed2: 35x35x256 / 288 / 288 (at 299x299 input)
        for pool_filters in (32, 64, 64):
            branch1x1 = conv2d_bn(x, 64, 1, 1)
            branch5x5 = conv2d_bn(x, 48, 1, 1)
            branch5x5 = conv2d_bn(branch5x5, 64, 5, 5)
            branch3x3dbl = conv2d_bn(x, 64, 1, 1)
            branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
            branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
            branch_pool = conv2d_bn(layers.avg_pool3(x), pool_filters, 1, 1)
            x = cat([branch1x1, branch5x5, branch3x3dbl, branch_pool])

        found["mixed2"] = x

        # mixed3: 17x17x768
        branch3x3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="VALID")
        branch3x3dbl = conv2d_bn(x, 64, 1, 1)
        branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3)
        branch3x3dbl = conv2d_bn(branch3x3dbl, 96, 3, 3, strides=(2, 2), padding="VALID")
        x = cat([branch3x3, branch3x3dbl, max_pool(x)])

        # mixed4, mixed5, mixed6, mixed7: 17x17x768
        for width in (128, 160, 160, 192):
            branch1x1 = conv2d_bn(x, 192, 1, 1)
            branch7x7 = conv2d_bn(x, width, 1, 1)
            branch7x7 = conv2d_bn(branch7x7, width, 1, 7)
            branch7x7 = conv2d_bn(branch7x7, 192, 7, 1)
            branch7x7dbl = conv2d_bn(x, width, 1, 1)
            branch7x7dbl = conv2d_bn(branch7x7dbl, width, 7, 1)
            branch7x7dbl = conv2d_bn(branch7x7dbl, width, 1, 7)
            branch7x7dbl = conv2d_bn(branch7x7dbl, width, 7, 1)
            branch7x7dbl = conv2d_bn(branch7x7dbl, 192, 1, 7)
            branch_pool = conv2d_bn(layers.avg_pool3(x), 192, 1, 1)
            x = cat([branch1x1, branch7x7, branch7x7dbl, branch_pool])

        found["mixed7"] = x

        # mixed8: 8x8x1280
        branch3x3 = conv2d_bn(x, 192, 1, 1)
        branch3x3 = conv2d_bn(branch3x3, 320, 3, 3, strides=(2, 2), padding="VALID")
        branch7x7x3 = conv2d_bn(x, 192, 1, 1)
        branch7x7x3 = conv2d_bn(branch7x7x3, 192, 1, 7)
        branch7x7x3 = conv2d_bn(branch7x7x3, 192, 7, 1)
        branch7x7x3 = conv2d_bn(branch7x7x3, 192, 3, 3, strides=(2, 2), padding="VALID")
        x = cat([branch3x3, branch7x7x3, max_pool(x)])

        def max_pool_same(x):
            return nn.max_pool(x, (3, 3), strides=(1, 1), padding="SAME")

        # mixed9, mixed10: 8x8x2048
        for pool in (layers.avg_pool3, layers.avg_pool3 if self.last_pool == "avg" else max_pool_same):
            branch1x1 = conv2d_bn(x, 320, 1, 1)
            branch3x3 = conv2d_bn(x, 384, 1, 1)
            branch3x3 = cat([conv2d_bn(branch3x3, 384, 1, 3), conv2d_bn(branch3x3, 384, 3, 1)])
            branch3x3dbl = conv2d_bn(x, 448, 1, 1)
            branch3x3dbl = conv2d_bn(branch3x3dbl, 384, 3, 3)
            branch3x3dbl = cat([conv2d_bn(branch3x3dbl, 384, 1, 3), conv2d_bn(branch3x3dbl, 384, 3, 1)])
            branch_pool = conv2d_bn(pool(x), 192, 1, 1)
            x = cat([branch1x1, branch3x3, branch3x3dbl, branch_pool])

        assert next(counter) == NUM_CONV_BN
        if self.endpoints:
            return {**found, "mixed10": x}

        if self.include_top:
            return self._top(jnp.mean(x, axis=(1, 2)))  # avg_pool (GlobalAveragePooling2D)
        if self.pooling == "avg":
            x = jnp.mean(x, axis=(1, 2))
        elif self.pooling == "max":
            x = jnp.max(x, axis=(1, 2))
        if self.freeze_backbone:
            x = jax.lax.stop_gradient(x)
        return x

    @nn.nowrap
    def backbone(self):
        """(module, its parameters' scope) computing the pooled features the top reads."""
        return self.clone(include_top=False, pooling="avg", parent=None), None

    def _top(self, features):
        """Logits of pooled features (Keras applies the softmax here; we leave it to the loss)."""
        if self.freeze_backbone:
            features = jax.lax.stop_gradient(features)
        x = nn.Dense(
            self.num_classes, kernel_init=kernel_init, bias_init=bias_init, dtype=self.dtype, name="predictions"
        )(jnp.asarray(features, self.dtype))
        return jnp.asarray(x, jnp.float32)
