"""Reading and checking the image files that our builders prepare, with errors that name them."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxvision.data.errors import DataError

T = TypeVar("T")
R = TypeVar("R")
_log = logging.getLogger(__name__)
_SKIP_HINT = "or set config.data.skip_bad_examples=True to skip such files"


def png_bytes(array: np.ndarray) -> bytes:
    """Lossless PNG encoding of a uint8 [H, W] / [H, W, 1] / [H, W, 3] array (masks)."""
    buffer = io.BytesIO()
    # Level 1: masks are flat, so the fastest level already compresses them nearly as well.
    Image.fromarray(array.squeeze(-1) if array.ndim == 3 and array.shape[-1] == 1 else array).save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


def jpeg_bytes(array: np.ndarray, quality: int = 95) -> bytes:
    """JPEG encoding of a uint8 [H, W, 3] array (noisy images barely shrink as PNG)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def check_image(path: os.PathLike | str) -> tuple[int, int]:
    """Decodes the whole image file once and returns its (height, width).

    JPEGs are decoded at reduced scale (PIL draft), which still reads every byte, so truncated
    or damaged files are caught at a fraction of the cost of a full decode.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: restore it, {_SKIP_HINT}.")
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.draft("RGB", (max(width // 8, 1), max(height // 8, 1)))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path} is not a readable image ({e}): replace or delete it, {_SKIP_HINT}.") from None
    return height, width


def read_class_mask(path: os.PathLike | str, image_path: os.PathLike | str, image_hw: tuple[int, int]) -> np.ndarray:
    """The class indices of a palette (or single-channel) PNG, checked against its image's size."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: restore the mask of {image_path}, {_SKIP_HINT}.")
    try:
        with Image.open(path) as mask:
            mode = mask.mode
            # A palette PNG's array holds the palette indices, which are the class ids.
            values = np.asarray(mask) if mode in ("P", "L") else None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path} is not a readable mask image ({e}): replace it, {_SKIP_HINT}.") from None
    if values is None:
        raise DataError(
            f"{path} is a {mode} image, but class masks must be palette (or single-channel) PNGs "
            f"whose pixel values are class ids: convert it, {_SKIP_HINT}."
        )
    if values.shape != tuple(image_hw):
        raise DataError(
            f"{path} is {values.shape[1]}x{values.shape[0]} pixels but its image {image_path} is "
            f"{image_hw[1]}x{image_hw[0]}: masks must match their images, {_SKIP_HINT}."
        )
    return values


def checked(items: Iterable[T], make: Callable[[T], R], *, skip: bool, what: str) -> Iterator[R]:
    """`make(item)` for each item; with `skip`, items whose files are bad are left out and counted."""
    skipped, total = [], 0
    for item in items:
        total += 1
        try:
            result = make(item)
        except (DataError, FileNotFoundError) as e:
            if not skip:
                raise
            skipped.append(str(e))
            continue
        yield result
    if skipped:
        _log.warning(
            "Skipped %d of %d examples of %s (config.data.skip_bad_examples=True); the first: %s",
            len(skipped),
            total,
            what,
            skipped[0],
        )


class CheckingBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder of our own (folder, mask folder, VOC) that checks every file it prepares and,
    with `skip_bad_examples`, leaves the bad ones out (see `checked`) instead of stopping."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, skip_bad_examples: bool = False, **kwargs):
        self._skip_bad_examples = skip_bad_examples
        super().__init__(**kwargs)
