"""Images with foreground masks in folders, prepared as a tfds dataset (every pair checked once).

Two layouts are recognised under the root folder:

* `<root>/images/` and `<root>/masks/`, paired by file stem (`images/0001.jpg` with
  `masks/0001.png`): one pool of examples, split by `config.data.masks.split`;
* `<root>/<split>/images/` and `<root>/<split>/masks/`: the layout's own splits.

Images and masks may be PNG, JPEG or BMP. A mask becomes foreground (1) / background (0) by
`config.data.masks.foreground`:

* 'binary' (default): masks of the values 0/1 or 0/255 (JPEG masks, whose compression blurs
  the edges, are thresholded at half their range); any other value is an error;
* 'nonzero': every value above 0 is foreground (class-index maps; palette PNGs hold indices);
* 'values': the pixels whose value is in `config.data.masks.foreground_values` (e.g. (15,),
  VOC's person) are foreground.

At preparation every pair is checked: a missing partner, an unreadable file, sizes that differ
or values that fit no rule stop with one sentence that names the file (or, with
`config.data.skip_bad_examples`, the pair is left out and counted).

Splits of the one-pool layout are drawn once from the sorted stems, by a seeded permutation
(`config.data.masks.split_seed`): fractions (0.8, 0.2) give 'train' and 'validation', three
fractions add 'test'; the same files, fractions and seed give the same split on every machine.
The tfds config name holds a hash of the listing (paths, sizes), the rule and the split, so a
changed folder is prepared afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxvision.data.errors import DataError
from jaxvision.data.files import CheckingBuilder, check_image, checked, png_bytes

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SPLIT_NAMES = ("train", "validation", "test")
_SKIP_HINT = "or set config.data.skip_bad_examples=True to skip such pairs"


@dataclasses.dataclass(eq=False)
class MaskFolderConfig(tfds.core.BuilderConfig):
    """A scanned folder: per split, (image path, mask path) pairs relative to the root."""

    root: str = ""
    foreground: object = "binary"
    pairs: dict[str, list[tuple[str, str]]] = dataclasses.field(default_factory=dict, repr=False)


def _files(folder: str) -> dict[str, str]:
    """stem -> file name of the images in `folder` (a stem twice is an error)."""
    found: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in EXTENSIONS and os.path.isfile(os.path.join(folder, name)):
            if stem in found:
                raise DataError(f"{folder} holds both {found[stem]} and {name}: one file per stem, please.")
            found[stem] = name
    return found


def _pairs(root: str, prefix: str) -> list[tuple[str, str]]:
    images, masks = _files(os.path.join(root, prefix, "images")), _files(os.path.join(root, prefix, "masks"))
    for stem in sorted(set(images) ^ set(masks)):
        have, lack = ("images", "masks") if stem in images else ("masks", "images")
        raise DataError(
            f"{os.path.join(root, prefix, have, (images | masks)[stem])} has no partner in "
            f"{os.path.join(root, prefix, lack)}: add the missing file (same stem) or remove this one."
        )
    return [
        (os.path.join(prefix, "images", images[s]), os.path.join(prefix, "masks", masks[s])) for s in sorted(images)
    ]


def _split(pairs: list, fractions: tuple[float, ...], seed: int) -> dict[str, list]:
    if not 2 <= len(fractions) <= 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"config.data.masks.split is {fractions!r}: give 2 or 3 positive fractions that add up "
            "to 1 (train, validation[, test]), e.g. (0.8, 0.2)."
        )
    order = np.random.default_rng(seed).permutation(len(pairs))
    ends = np.round(np.cumsum(fractions) * len(pairs)).astype(int)
    starts = np.concatenate([[0], ends[:-1]])
    return {name: [pairs[i] for i in sorted(order[a:b])] for name, a, b in zip(SPLIT_NAMES, starts, ends)}


def scan(root: str, foreground="binary", split=(0.8, 0.2), split_seed: int = 0) -> MaskFolderConfig:
    """The config of the folder at `root`: its layout read, its pairs listed and split.

    `foreground` is 'binary', 'nonzero' or a tuple of the foreground values."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"config.data.masks.root {root} is not a folder: point it at a folder with "
            "images/ and masks/ (or <split>/images/ and <split>/masks/)."
        )
    foreground = _rule(foreground)
    if os.path.isdir(os.path.join(root, "images")) or os.path.isdir(os.path.join(root, "masks")):
        pairs = _split(_pairs(root, ""), tuple(split), split_seed)
    else:
        splits = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, "images")))
        if not splits:
            raise DataError(
                f"{root} has neither images/ and masks/ nor <split>/images/ and <split>/masks/: "
                "put the images and their masks in one of these layouts."
            )
        bad = [s for s in splits if not re.fullmatch(r"\w+", s)]
        if bad:
            raise DataError(f"{os.path.join(root, bad[0])}: split folder names may hold only letters, digits and '_'.")
        pairs = {s: _pairs(root, s) for s in splits}
    pairs = {s: p for s, p in pairs.items() if p}
    if not pairs:
        raise DataError(f"{root} holds no image/mask pairs ({', '.join(EXTENSIONS)}).")
    size = lambda name: os.path.getsize(os.path.join(root, name))  # noqa: E731
    listing = sorted((s, image, mask, size(image), size(mask)) for s, p in pairs.items() for image, mask in p)
    digest = hashlib.sha1(repr((root, listing, foreground)).encode()).hexdigest()[:12]
    name = re.sub(r"\W", "_", os.path.basename(root)) or "root"
    return MaskFolderConfig(name=f"{name}_{digest}", version="1.0.0", root=root, foreground=foreground, pairs=pairs)


def _rule(foreground):
    if foreground in ("binary", "nonzero"):
        return foreground
    if (
        isinstance(foreground, (tuple, list))
        and foreground
        and all(isinstance(v, int) and 0 <= v <= 255 for v in foreground)
    ):
        return tuple(sorted(foreground))
    raise ValueError(
        f"config.data.masks.foreground is {foreground!r}: use 'binary' (0/1 or 0/255 masks), "
        "'nonzero' (class maps: every class is foreground) or 'values' with "
        "config.data.masks.foreground_values, e.g. (15,)."
    )


def foreground_mask(path: str, image_path: str, image_hw: tuple[int, int], rule) -> np.ndarray:
    """The mask at `path` as uint8 0/1 [H, W], checked against its image and the rule."""
    try:
        with Image.open(path) as mask:
            values = np.asarray(mask if mask.mode in ("P", "L", "1") else mask.convert("L"))
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path} is not a readable mask image ({e}): replace it, {_SKIP_HINT}.") from None
    values = values.astype(np.uint8)
    if values.shape != tuple(image_hw):
        raise DataError(
            f"{path} is {values.shape[1]}x{values.shape[0]} pixels but its image {image_path} is "
            f"{image_hw[1]}x{image_hw[0]}: masks must match their images, {_SKIP_HINT}."
        )
    if rule == "nonzero":
        return (values > 0).astype(np.uint8)
    if isinstance(rule, tuple):
        return np.isin(values, rule).astype(np.uint8)
    if path.lower().endswith((".jpg", ".jpeg")):  # lossy: the values spread around 0 and the top
        return (values >= max(int(values.max()) + 1, 2) // 2).astype(np.uint8)
    present = set(np.unique(values).tolist())
    if present <= {0, 1}:
        return values
    if present <= {0, 255}:
        return (values > 0).astype(np.uint8)
    raise DataError(
        f"{path} holds the values {sorted(present)[:6]}{'...' if len(present) > 6 else ''}, which fit "
        "no binary mask (0/1 or 0/255): set config.data.masks.foreground to 'nonzero', or to 'values' "
        f"with config.data.masks.foreground_values, {_SKIP_HINT}."
    )


class JaxvisionMaskFolder(CheckingBuilder):
    """Images with foreground masks; build it with `config=mask_folder.scan(root, ...)`."""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(),
                    "mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                    "file_name": tfds.features.Text(),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the files are local
        return {split: self._generate_examples(split) for split in self.builder_config.pairs}

    def _generate_examples(self, split: str):
        config = self.builder_config

        def example(pair):
            image, mask = (os.path.join(config.root, p) for p in pair)
            values = foreground_mask(mask, image, check_image(image), config.foreground)
            return pair[0], {"image": image, "mask": png_bytes(values), "file_name": pair[0]}

        yield from checked(config.pairs[split], example, skip=self._skip_bad_examples, what=f"{config.root} ({split})")
