"""PASCAL VOC 2007-2012 from the official trainval tar or a VOCdevkit folder, with class masks.

tfds' own `voc` builder has labels and boxes but no masks and only 2007 and 2012. This builder
reads any year's `VOCdevkit/VOC<year>` and has two kinds of config:

* `segmentation_<year>`: the `ImageSets/Segmentation` train / val lists, with
  `segmentation` the class mask of `SegmentationClass/<id>.png` (0 background, 1-20 the
  classes of `VOC_CLASSES`, 255 void), `mask` the binary foreground mask and `labels` the
  classes present in the mask.
* `classification_<year>`: the `ImageSets/Main` train / val lists with `labels` (and
  `labels_no_difficult`) from `Annotations/<id>.xml`, the same features as tfds' `voc`, so
  paper B's VOC 2009 cat / motorbike / bottle subset can be rebuilt.

Void (255) marks the 5-pixel band along every object outline and whole objects too hard to
outline. It counts as foreground in `mask`: those pixels belong to objects (the band straddles
the outline, so objects grow by about two pixels at VOC resolution, well under one pixel at the
64x64 of paper B) and a hard object is still an object. Void never yields a label.
`segmentation` keeps 255 for anyone who wants to ignore void pixels instead.

Where the files come from, in order: the manual dir (`config.data.voc.manual_dir`) holding
`VOCdevkit/VOC<year>` (or that folder itself), or the official tar there; otherwise the tfds
download manager fetches the official tar from the VOC site.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import xml.etree.ElementTree as ElementTree

import numpy as np
import tensorflow_datasets as tfds

from jaxvision.data.errors import DataError
from jaxvision.data.files import CheckingBuilder, check_image, checked, png_bytes, read_class_mask

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOID = 255
TARS = {
    2007: "VOCtrainval_06-Nov-2007.tar",
    2008: "VOCtrainval_14-Jul-2008.tar",
    2009: "VOCtrainval_11-May-2009.tar",
    2010: "VOCtrainval_03-May-2010.tar",
    2011: "VOCtrainval_25-May-2011.tar",
    2012: "VOCtrainval_11-May-2012.tar",
}
_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc{year}/{tar}"
_SPLITS = {"train": "train", "validation": "val"}  # tfds split -> VOC image set
TASKS = ("segmentation", "classification")


def tar_url(year: int) -> str:
    return _URL.format(year=year, tar=TARS[year])


@dataclasses.dataclass(eq=False)
class VocConfig(tfds.core.BuilderConfig):
    year: int = 2012
    task: str = "segmentation"


def builder_config(task: str, year: int, manual_dir: str = "") -> str | VocConfig:
    """The builder config of `task` and `year`: the named one for the official tar that tfds
    downloads; for files in a manual dir, one named by a digest of those files (paths, sizes,
    modification times), so that another or a changed devkit is prepared afresh."""
    if not manual_dir:
        return f"{task}_{year}"
    name = f"{task}_{year}_{_digest(manual_dir, year)}"
    if name not in _MADE:  # one object per config: tfds accepts only its own object of a custom config
        _MADE[name] = VocConfig(name=name, year=year, task=task, description=f"VOC{year} {task} from {manual_dir}")
    return _MADE[name]


_MADE: dict[str, VocConfig] = {}


def _digest(manual_dir: str, year: int) -> str:
    devkit = find_devkit(manual_dir, year)
    tar = os.path.join(manual_dir, TARS[year])
    if devkit:
        files = [
            os.path.join(folder, f)
            for sub in ("ImageSets", "JPEGImages", "SegmentationClass", "Annotations")
            for folder, _, names in sorted(os.walk(os.path.join(devkit, sub)))
            for f in sorted(names)
        ]
    else:
        files = [tar] if os.path.isfile(tar) else []
    listing = [(os.path.abspath(f), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    return hashlib.sha1(repr(listing).encode()).hexdigest()[:12]


def find_devkit(root: os.PathLike | str, year: int) -> str | None:
    """`VOC<year>` under root (as the tars unpack: `VOCdevkit/VOC<year>`, in 2011 one level
    deeper), or root itself when it is that folder; None when absent."""
    candidates = [os.path.join(root, f"VOCdevkit/VOC{year}"), os.path.join(root, f"VOC{year}"), str(root)]
    if os.path.isdir(root):
        candidates += [os.path.join(root, d, f"VOCdevkit/VOC{year}") for d in sorted(os.listdir(root))]
    for path in candidates:
        if os.path.isdir(os.path.join(path, "JPEGImages")) and os.path.isdir(os.path.join(path, "ImageSets")):
            return path
    return None


def _read_ids(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: a VOCdevkit needs its ImageSets lists.")
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def _annotation_labels(path: str) -> tuple[list[int], list[int]]:
    """Sorted class ids of all objects and of the objects not marked difficult."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: restore it, or set config.data.skip_bad_examples=True.")
    try:
        objects = ElementTree.parse(path).getroot().findall("object")
        names = [
            (o.find("name").text.strip().lower(), (o.findtext("difficult") or "0").strip() == "1") for o in objects
        ]
    except (ElementTree.ParseError, AttributeError) as e:
        raise DataError(f"{path} is not a readable VOC annotation ({e}): replace it.") from None
    unknown = sorted({n for n, _ in names} - set(VOC_CLASSES))
    if unknown:
        raise DataError(f"{path} names unknown class {unknown[0]!r}: VOC classes are {', '.join(VOC_CLASSES)}.")
    every = sorted({VOC_CLASSES.index(n) for n, _ in names})
    easy = sorted({VOC_CLASSES.index(n) for n, hard in names if not hard})
    return every, easy


class JaxvisionVoc(CheckingBuilder):
    """PASCAL VOC segmentation (class and foreground masks) or classification, any year."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        VocConfig(name=f"{task}_{year}", year=year, task=task, description=f"VOC{year} {task}")
        for task in TASKS
        for year in TARS
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: a folder holding VOCdevkit/VOC<year> or the official VOCtrainval tar of that "
        "year; without it the tar is downloaded from the VOC site."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        labels = tfds.features.Sequence(tfds.features.ClassLabel(names=VOC_CLASSES))
        features = {"image": tfds.features.Image(), "image/filename": tfds.features.Text(), "labels": labels}
        if self.builder_config.task == "segmentation":
            features["segmentation"] = tfds.features.Image(shape=(None, None, 1), encoding_format="png")
            features["mask"] = tfds.features.Image(shape=(None, None, 1), encoding_format="png")
        else:
            features["labels_no_difficult"] = labels
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(features),
            homepage=f"http://host.robots.ox.ac.uk/pascal/VOC/voc{self.builder_config.year}/",
        )

    def _devkit(self, dl_manager) -> str:
        year = self.builder_config.year
        try:
            manual_dir = dl_manager.manual_dir
        except AssertionError:  # tfds' way of saying the manual dir is absent or empty
            manual_dir = None
        if manual_dir is not None:
            found = find_devkit(manual_dir, year)
            if found:
                return found
            tar = os.path.join(manual_dir, TARS[year])
            if os.path.isfile(tar):
                extracted = dl_manager.extract(tar)
            else:
                raise FileNotFoundError(
                    f"{manual_dir} holds neither VOCdevkit/VOC{year} nor {TARS[year]}: put one of them "
                    "there, or leave config.data.voc.manual_dir empty to download the tar."
                )
        else:
            extracted = dl_manager.extract(dl_manager.download(tar_url(year)))
        found = find_devkit(extracted, year)
        if not found:
            raise DataError(
                f"{TARS[year]} (unpacked in {extracted}) holds no VOCdevkit/VOC{year}: "
                "it is not the official VOC trainval tar of that year."
            )
        return found

    def _split_generators(self, dl_manager):
        devkit = self._devkit(dl_manager)
        image_sets = "Segmentation" if self.builder_config.task == "segmentation" else "Main"
        return {
            split: self._generate_examples(devkit, os.path.join(devkit, "ImageSets", image_sets, f"{name}.txt"))
            for split, name in _SPLITS.items()
        }

    def _generate_examples(self, devkit: str, list_path: str):
        segmentation = self.builder_config.task == "segmentation"
        make = self._segmentation_example if segmentation else self._classification_example
        yield from checked(
            _read_ids(list_path),
            lambda image_id: make(devkit, image_id),
            skip=self._skip_bad_examples,
            what=list_path,
        )

    @staticmethod
    def _segmentation_example(devkit: str, image_id: str):
        image_path = os.path.join(devkit, "JPEGImages", f"{image_id}.jpg")
        mask_path = os.path.join(devkit, "SegmentationClass", f"{image_id}.png")
        classes = read_class_mask(mask_path, image_path, check_image(image_path))
        present = np.unique(classes)
        bad = present[(present > len(VOC_CLASSES)) & (present != VOID)]
        if bad.size:
            raise DataError(
                f"{mask_path} holds value {bad[0]}, which is no VOC class id (0-20) nor "
                f"void ({VOID}): it is not a VOC class mask."
            )
        return image_id, {
            "image": image_path,
            "image/filename": f"{image_id}.jpg",
            "segmentation": png_bytes(classes),
            "mask": png_bytes((classes > 0).astype(np.uint8)),  # void counts as foreground
            "labels": [int(k) - 1 for k in present if 0 < k <= len(VOC_CLASSES)],
        }

    @staticmethod
    def _classification_example(devkit: str, image_id: str):
        image_path = os.path.join(devkit, "JPEGImages", f"{image_id}.jpg")
        check_image(image_path)
        every, easy = _annotation_labels(os.path.join(devkit, "Annotations", f"{image_id}.xml"))
        return image_id, {
            "image": image_path,
            "image/filename": f"{image_id}.jpg",
            "labels": every,
            "labels_no_difficult": easy,
        }
