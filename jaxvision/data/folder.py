"""Images in class sub-folders, prepared as a tfds dataset (every file checked once).

Three layouts are recognised under the root folder:

* `<root>/<class>/<image>`: one split, 'train' (the layout of tfds' ImageFolder without splits);
* `<root>/<split>/<class>/<image>`: one split per sub-folder (tfds' ImageFolder layout);
* the Oxford 102 Flowers files: `imagelabels.mat` and `setid.mat` at the root and images named
  `image_<id>.jpg` anywhere below it. Labels come from `imagelabels.mat` (0-based, the same
  ids as tfds' `oxford_flowers102`), splits from `setid.mat` (trnid -> train, valid ->
  validation, tstid -> test), restricted to the images present; class names from
  `cat_to_name.json` when present. An image in a class folder that disagrees with
  `imagelabels.mat` is an error.

Class names of the first two layouts are the sorted class folder names. The tfds config name
holds a hash of the listing (paths, sizes, labels), so changed files are prepared afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

import scipy.io
import tensorflow_datasets as tfds

from jaxvision.data.errors import DataError
from jaxvision.data.files import CheckingBuilder, check_image, checked

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_OXFORD_NAME = re.compile(r"image_(\d{5})\.jpg$")
_OXFORD_SPLITS = {"train": "trnid", "validation": "valid", "test": "tstid"}


@dataclasses.dataclass(eq=False)
class FolderConfig(tfds.core.BuilderConfig):
    """A scanned folder: its class names and, per split, (path relative to root, label) pairs."""

    root: str = ""
    class_names: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    files: dict[str, list[tuple[str, int]]] = dataclasses.field(default_factory=dict, repr=False)


def _images(folder: str) -> list[str]:
    return sorted(
        f
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )


def _subfolders(folder: str) -> list[str]:
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def _scan_classes(root: str, prefix: str, class_names: list[str]) -> list[tuple[str, int]]:
    top = os.path.join(root, prefix)
    return [
        (os.path.join(prefix, name, f), class_names.index(name))
        for name in _subfolders(top)
        for f in _images(os.path.join(top, name))
    ]


def _scan_oxford(root: str) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    try:
        labels = scipy.io.loadmat(os.path.join(root, "imagelabels.mat"))["labels"].ravel().astype(int)
        set_ids = scipy.io.loadmat(os.path.join(root, "setid.mat"))
        split_ids = {split: set(set_ids[key].ravel().tolist()) for split, key in _OXFORD_SPLITS.items()}
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{root}: imagelabels.mat / setid.mat are not the Oxford 102 files ({e}).") from None
    num_classes = int(labels.max())
    names_file = os.path.join(root, "cat_to_name.json")
    if os.path.isfile(names_file):
        with open(names_file) as f:
            names = json.load(f)
        class_names = [names[str(k)] for k in range(1, num_classes + 1)]
    else:
        class_names = [str(k) for k in range(1, num_classes + 1)]
    files = {split: [] for split in _OXFORD_SPLITS}
    for folder, _, names_here in sorted(os.walk(root)):
        for name in sorted(names_here):
            match = _OXFORD_NAME.match(name)
            if not match:
                continue
            image_id = int(match.group(1))
            path = os.path.relpath(os.path.join(folder, name), root)
            if not 1 <= image_id <= len(labels):
                raise DataError(
                    f"{os.path.join(root, path)} has id {image_id}, beyond the {len(labels)} labels of imagelabels.mat."
                )
            label = int(labels[image_id - 1])
            parent = os.path.basename(folder)
            if parent.isdigit() and int(parent) != label:
                raise DataError(
                    f"{os.path.join(root, path)} lies in class folder {parent}, but "
                    f"imagelabels.mat gives it class {label}: move it to folder {label}."
                )
            for split, ids in split_ids.items():
                if image_id in ids:
                    files[split].append((path, label - 1))
    return class_names, files


def scan(root: str) -> FolderConfig:
    """The config of the folder at root: its layout read, its files listed."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"config.data.folder.root {root} is not a folder: point it at a folder of "
            "class sub-folders (<root>/<class>/*.jpg)."
        )
    oxford = all(os.path.isfile(os.path.join(root, f)) for f in ("imagelabels.mat", "setid.mat"))
    if oxford:
        class_names, files = _scan_oxford(root)
    else:
        top = _subfolders(root)
        # Split layout: no image at the top two levels, class folders one level down.
        nested = (
            top
            and not _images(root)
            and all(_subfolders(os.path.join(root, d)) and not _images(os.path.join(root, d)) for d in top)
        )
        if nested:
            class_names = sorted({c for split in top for c in _subfolders(os.path.join(root, split))})
            files = {split: _scan_classes(root, split, class_names) for split in top}
        else:
            class_names = top
            files = {"train": _scan_classes(root, "", class_names)}
    files = {split: pairs for split, pairs in files.items() if pairs}
    used = {label for pairs in files.values() for _, label in pairs}
    empty = [name for i, name in enumerate(class_names) if i not in used and not oxford]  # Oxford: classes from .mat
    if files and empty:
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise DataError(
            f"{root}: the class folder {empty[0]!r}{more} "
            f"holds no images ({', '.join(IMAGE_EXTENSIONS)}): add its images or remove the folder, "
            "else it would be a class no example teaches."
        )
    if not files:
        raise DataError(
            f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class sub-folders: "
            "expected <root>/<class>/<image> or <root>/<split>/<class>/<image>."
        )
    bad = [s for s in files if not re.fullmatch(r"\w+", s)]
    if bad:
        raise DataError(f"{os.path.join(root, bad[0])}: split folder names may hold only letters, digits and '_'.")
    digest = hashlib.sha1(
        repr(
            sorted(
                (split, path, label, os.path.getsize(os.path.join(root, path)))
                for split, pairs in files.items()
                for path, label in pairs
            )
        ).encode()
        + root.encode()
    ).hexdigest()[:12]
    name = re.sub(r"\W", "_", os.path.basename(root)) or "root"
    return FolderConfig(
        name=f"{name}_{digest}", version="1.0.0", root=root, class_names=tuple(class_names), files=files
    )


class JaxvisionImageFolder(CheckingBuilder):
    """A folder of class sub-folders; build it with `config=folder.scan(root)`."""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(),
                    "label": tfds.features.ClassLabel(names=self.builder_config.class_names),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the files are local
        return {split: self._generate_examples(split) for split in self.builder_config.files}

    def _generate_examples(self, split: str):
        root = self.builder_config.root

        def example(pair):
            path, label = pair
            check_image(os.path.join(root, path))
            return path, {"image": os.path.join(root, path), "label": label, "file_name": path}

        yield from checked(
            self.builder_config.files[split], example, skip=self._skip_bad_examples, what=f"{root} ({split})"
        )
