"""One example's way from its prepared record to a model's input in numpy and PIL, without
TensorFlow: the grain reader's counterpart of preprocess.py (same crops, resizing, flips,
grayscale and scaling; the random crops and flips draw from numpy, so they differ from tf.data's).
"""

from __future__ import annotations

import io

import ml_collections
import numpy as np
from PIL import Image

GRAY = np.array([0.2989, 0.5870, 0.1140], np.float32)  # tf.image.rgb_to_grayscale's weights


def decode(encoded: bytes, channels: int) -> np.ndarray:
    """[H, W, channels] uint8 of a PNG or JPEG (3 channels: grey and RGBA made RGB, like tf.data)."""
    with Image.open(io.BytesIO(encoded)) as image:
        pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"))
    return pixels.reshape(*pixels.shape[:2], channels)


def inception_box(height: int, width: int, rng: np.random.Generator, area, aspect, attempts: int = 10):
    """(top, left, height, width) of a random crop of `area` of the image's area and `aspect`
    width / height, or the whole image when `attempts` draws do not fit."""
    for _ in range(attempts):
        target, ratio = rng.uniform(*area) * height * width, rng.uniform(*aspect)
        h, w = round(np.sqrt(target / ratio)), round(np.sqrt(target * ratio))
        if 0 < h <= height and 0 < w <= width:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width


def central_box(height: int, width: int, fraction: float):
    side = max(int(min(height, width) * fraction), 1)
    return (height - side) // 2, (width - side) // 2, side, side


def resize(pixels: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """[size, size, C] float32; bilinear with antialiasing (each channel in float, no rounding),
    or nearest neighbour for masks (the source pixel under each output pixel's centre, as
    tf.image.resize picks it)."""
    if pixels.shape[:2] == (size, size):  # both resizes are the identity here
        return pixels.astype(np.float32)
    if nearest:
        rows, cols = (
            np.minimum(((np.arange(size) + 0.5) * n / size).astype(np.int64), n - 1) for n in pixels.shape[:2]
        )
        return pixels[rows][:, cols].astype(np.float32)
    channels = [
        np.asarray(Image.fromarray(pixels[..., c].astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
        for c in range(pixels.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def preprocessor(data: ml_collections.ConfigDict, train: bool):
    """Two per-example functions: `fixed(image, mask)`, the steps that are the same every epoch
    (a 'none' or 'central' crop and the resize), whose result may be cached, then
    `varied(image, mask, rng)`, the rest (an 'inception' crop and its resize, flip, grayscale,
    scale)."""
    size, crop = data.image_size, data.train_crop if train else data.eval_crop
    low, high = (float(v) for v in data.value_range)

    def cut(image, mask, box):
        top, left, h, w = box
        image = resize(image[top : top + h, left : left + w], size)
        return image, None if mask is None else resize(mask[top : top + h, left : left + w], size, nearest=True)

    def fixed(image: np.ndarray, mask: np.ndarray | None):
        height, width = image.shape[:2]
        if crop == "none":
            return cut(image, mask, (0, 0, height, width))
        if crop == "central":
            return cut(image, mask, central_box(height, width, data.central_crop_fraction))
        return image, mask

    def varied(image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator | None = None):
        if crop == "inception":
            box = inception_box(*image.shape[:2], rng, data.inception_crop_area, data.inception_crop_aspect)
            image, mask = cut(image, mask, box)
        if train and data.random_flip and rng.random() < 0.5:
            image, mask = image[:, ::-1], None if mask is None else mask[:, ::-1]
        if data.grayscale:
            image = (image @ GRAY)[..., None]
        return image * np.float32((high - low) / 255.0) + np.float32(low), mask

    return fixed, varied
