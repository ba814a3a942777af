"""One example's way from its prepared record to a model's input: decode, crop, resize, flip,
grayscale, scale (`preprocessor`); and, when a record cannot be decoded, which one it is."""

from __future__ import annotations

import re

import ml_collections
import tensorflow as tf

from jaxvision.data.sources import Example, Source


def decode(ex: Example, has_mask: bool) -> tuple[tf.Tensor, tf.Tensor | None]:
    image = tf.io.decode_image(ex["image"], channels=3, expand_animations=False)
    if not has_mask:
        return image, None
    mask = tf.io.decode_png(ex["mask"], channels=1)
    same = tf.debugging.assert_equal(tf.shape(image)[:2], tf.shape(mask)[:2], message="its mask and image sizes differ")
    with tf.control_dependencies([same]):
        return tf.identity(image), mask


def preprocessor(data: ml_collections.ConfigDict, source: Source, train: bool):
    """The per-example function: decode, crop, resize, flip, grayscale, scale."""
    size = data.image_size
    low, high = (float(v) for v in data.value_range)
    crop = data.train_crop if train else data.eval_crop

    def run(ex: Example, seed: tf.Tensor | None = None) -> Example:
        image, mask = decode(ex, source.has_mask)
        if train:
            crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        if crop == "inception":
            begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
                tf.shape(image),
                tf.zeros([0, 0, 4], tf.float32),
                seed=crop_seed,
                min_object_covered=0.0,
                aspect_ratio_range=tuple(data.inception_crop_aspect),
                area_range=tuple(data.inception_crop_area),
                max_attempts=10,
                use_image_if_no_bounding_boxes=True,
            )
        elif crop == "central":
            hw = tf.shape(image)[:2]
            side = tf.cast(tf.cast(tf.reduce_min(hw), tf.float32) * data.central_crop_fraction, tf.int32)
            side = tf.maximum(side, 1)
            begin, extent = tf.concat([(hw - side) // 2, [0]], 0), tf.stack([side, side, -1])
        if crop != "none":
            image = tf.slice(image, begin, extent)
            mask = None if mask is None else tf.slice(mask, begin, extent)
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
        if mask is not None:
            mask = tf.image.resize(mask, (size, size), method="nearest")
        if train and data.random_flip:
            flip = tf.random.stateless_uniform([], flip_seed) < 0.5
            image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
            if mask is not None:
                mask = tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask)
        if data.grayscale:
            image = tf.image.rgb_to_grayscale(image)
        image = image * ((high - low) / 255.0) + low
        image.set_shape((size, size, 1 if data.grayscale else 3))
        out = {"image": image, "label": ex["label"], "valid": tf.constant(1.0)}
        out["label"].set_shape((len(source.class_names),))
        if mask is not None:
            out["mask"] = tf.cast(tf.reshape(mask, (size, size, 1)), tf.float32)
        return out

    return run


def _reason(error: tf.errors.OpError) -> str:
    """The TensorFlow error's own sentence, without its op and device decorations."""
    line = error.message.strip().splitlines()[0]
    return re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "", line).strip().rstrip(".")


def find_bad_example(source: Source, raw: tf.data.Dataset, split: str, error: tf.errors.OpError) -> str:
    """Says which example of the split could not be read (found by decoding each in turn)."""
    for ex in raw:
        try:
            decode(ex, source.has_mask)
        except tf.errors.InvalidArgumentError as e:
            name = ex["name"].numpy().decode("utf-8", "replace")
            return (
                f"{name} of {source.name} ({split}) cannot be read ({_reason(e)}); its prepared copy under "
                f"{source.builder.data_dir} is damaged: delete that folder to prepare it again."
            )
    return f"Reading {source.name} ({split}) failed: {_reason(error)}."
