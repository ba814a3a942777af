"""The VOC builder from a VOCdevkit folder, the official tar (manual dir and download manager)
and real VOC files; the VOC pipelines; and clear errors for bad files."""

import logging
import os
import shutil
import tarfile
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxvision.data import DataError, default_data_config, make_pipelines, voc

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "voc-samples" / "VOC"
CAT, MOTORBIKE, BOTTLE, DOG = (voc.VOC_CLASSES.index(c) + 1 for c in ("cat", "motorbike", "bottle", "dog"))

# id: (height, width, [(class id, y0, y1, x0, x1, difficult)]); an object of class 255 is a
# region marked void (an object too hard to outline). Drawn in order, later on top.
SCENES = {
    "2009_000001": (24, 32, [(CAT, 4, 16, 4, 14, False), (DOG, 10, 20, 18, 30, False)]),
    "2009_000002": (32, 24, [(MOTORBIKE, 2, 30, 2, 22, False)]),
    "2009_000003": (24, 24, [(BOTTLE, 6, 20, 8, 14, True), (255, 2, 6, 16, 22, False)]),
    "2009_000004": (20, 28, []),
    "2009_000005": (28, 20, [(DOG, 3, 25, 3, 17, False), (BOTTLE, 10, 27, 12, 19, False)]),
    "2009_000006": (24, 32, [(CAT, 1, 23, 1, 31, False), (MOTORBIKE, 5, 12, 5, 12, False)]),
}
SEGMENTATION_SETS = {"train": ["2009_000001", "2009_000002", "2009_000003"], "val": ["2009_000004", "2009_000005"]}
MAIN_SETS = {
    "train": ["2009_000001", "2009_000002", "2009_000003", "2009_000004"],
    "val": ["2009_000005", "2009_000006"],
}


def voc_palette() -> list[int]:
    """The VOC colour map (class k's colour from the bits of k), flattened for PIL."""
    palette = []
    for k in range(256):
        r = g = b = 0
        for bit in range(8):
            r |= ((k >> (3 * bit)) & 1) << (7 - bit)
            g |= ((k >> (3 * bit + 1)) & 1) << (7 - bit)
            b |= ((k >> (3 * bit + 2)) & 1) << (7 - bit)
        palette += [r, g, b]
    return palette


def class_mask(image_id: str) -> np.ndarray:
    h, w, objects = SCENES[image_id]
    mask = np.zeros((h, w), np.uint8)
    for k, y0, y1, x0, x1, _ in objects:
        if k != 255:  # VOC draws a void band along each outline: here the outermost pixel ring
            mask[y0:y1, x0:x1] = 255
            mask[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = k
        else:
            mask[y0:y1, x0:x1] = 255
    return mask


def write_devkit(root: Path, year: int = 2009) -> Path:
    devkit = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "ImageSets/Main", "Annotations"):
        (devkit / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for image_id, (h, w, objects) in SCENES.items():
        mask = class_mask(image_id)
        # Objects (void included) bright, background dark: image and mask can be compared.
        image = np.where((mask > 0)[..., None], 220, 30) + rng.integers(-10, 10, size=(h, w, 3))
        Image.fromarray(image.astype(np.uint8)).save(devkit / "JPEGImages" / f"{image_id}.jpg", quality=95)
        png = Image.fromarray(mask, mode="P")
        png.putpalette(voc_palette())
        png.save(devkit / "SegmentationClass" / f"{image_id}.png")
        xml = "".join(
            f"<object><name>{voc.VOC_CLASSES[k - 1]}</name><difficult>{int(hard)}</difficult></object>"
            for k, *_, hard in objects
            if k != 255
        )
        (devkit / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{xml}</annotation>")
    for kind, sets in (("Segmentation", SEGMENTATION_SETS), ("Main", MAIN_SETS)):
        for name, ids in sets.items():
            (devkit / "ImageSets" / kind / f"{name}.txt").write_text("\n".join(ids) + "\n")
    return devkit


@pytest.fixture(scope="module")
def devkit_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc_folder")
    write_devkit(root)
    return root


@pytest.fixture(scope="module")
def tar_path(devkit_root, tmp_path_factory):
    path = tmp_path_factory.mktemp("voc_tar") / voc.TARS[2009]
    with tarfile.open(path, "w") as tar:
        tar.add(devkit_root / "VOCdevkit", arcname="VOCdevkit")
    return path


def prepared(task: str, data_dir: Path, manual_dir: Path | None, year: int = 2009, **kwargs):
    builder = voc.JaxvisionVoc(config=f"{task}_{year}", data_dir=str(data_dir), **kwargs)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


def read(builder, split: str) -> dict[str, dict]:
    ds = builder.as_dataset(split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    return {e["image/filename"].decode(): e for e in tfds.as_numpy(ds)}


def check_segmentation(builder, devkit: Path) -> None:
    for split, name in (("train", "train"), ("validation", "val")):
        examples = read(builder, split)
        assert sorted(examples) == [f"{i}.jpg" for i in SEGMENTATION_SETS[name]]
        for filename, e in examples.items():
            image_id = filename[:-4]
            expected = class_mask(image_id)
            assert e["image"] == (devkit / "JPEGImages" / filename).read_bytes()  # stored unchanged
            np.testing.assert_array_equal(e["segmentation"][..., 0], expected)
            np.testing.assert_array_equal(e["mask"][..., 0], (expected > 0).astype(np.uint8))  # void -> 1
            classes = sorted({k for k, *_ in SCENES[image_id][2] if k != 255})
            assert e["labels"].tolist() == [k - 1 for k in classes]


def test_segmentation_from_a_devkit_folder(devkit_root, tmp_path):
    check_segmentation(prepared("segmentation", tmp_path, devkit_root), devkit_root / "VOCdevkit" / "VOC2009")


def test_segmentation_from_the_tar_in_the_manual_dir(devkit_root, tar_path, tmp_path):
    check_segmentation(prepared("segmentation", tmp_path, tar_path.parent), devkit_root / "VOCdevkit" / "VOC2009")


def test_download_manager_fetches_the_official_tar(devkit_root, tar_path, tmp_path, monkeypatch):
    asked = []

    def download(self, url):  # stands in for the network: hands over the tar the test made
        asked.append(url)
        return tar_path

    monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
    check_segmentation(prepared("segmentation", tmp_path, None), devkit_root / "VOCdevkit" / "VOC2009")
    assert asked == ["http://host.robots.ox.ac.uk/pascal/VOC/voc2009/VOCtrainval_11-May-2009.tar"]


def test_classification_labels_from_annotations(devkit_root, tmp_path):
    builder = prepared("classification", tmp_path, devkit_root)
    for split, name in (("train", "train"), ("validation", "val")):
        examples = read(builder, split)
        assert sorted(examples) == [f"{i}.jpg" for i in MAIN_SETS[name]]
        for filename, e in examples.items():
            objects = [o for o in SCENES[filename[:-4]][2] if o[0] != 255]
            assert e["labels"].tolist() == sorted({o[0] - 1 for o in objects})
            assert e["labels_no_difficult"].tolist() == sorted({o[0] - 1 for o in objects if not o[5]})


def make_config(tmp_path, manual_dir, batch_size=4, **data):
    config = ml_collections.ConfigDict(dict(seed=0, batch_size=batch_size, eval_batch_size=4))
    config.data = default_data_config()
    config.data.update(dict(data_dir=str(tmp_path / "tfds"), image_size=16, prefetch_to_device=0))
    config.data.voc.update(dict(year=2009, manual_dir=str(manual_dir)))
    config.data.update(data)
    return config


def label_rows(batches):
    return sorted(
        tuple(row)
        for b in batches
        for row, v in zip(b["label"].reshape(-1, b["label"].shape[-1]), b["valid"].ravel())
        if v
    )


def test_multilabel_pipeline_keeps_images_with_a_chosen_class(devkit_root, tmp_path):
    two_devices = jax.local_devices()[:2]
    p = make_pipelines(make_config(tmp_path, devkit_root, name="voc_multilabel", batch_size=2), devices=two_devices)
    # train: images 1 (cat, dog), 2 (motorbike), 3 (difficult bottle); image 4 has no object.
    assert p.info.num_examples == {"train": 3, "validation": 2}
    assert p.info.class_names == ("cat", "motorbike", "bottle") and p.info.multi_label
    assert label_rows(p.evals["validation"]()) == [(0, 0, 1), (1, 1, 0)]
    rows = label_rows([b for epoch in range(2) for b in p.train(epoch)])
    assert set(rows) <= {(1, 0, 0), (0, 1, 0), (0, 0, 1)} and len(rows) == 4  # 1 step of 2, 2 epochs
    easy = make_pipelines(
        make_config(tmp_path, devkit_root, name="voc_multilabel", batch_size=2, voc=dict(include_difficult=False)),
        devices=two_devices,
    )
    assert easy.info.num_examples["train"] == 2  # the only bottle is difficult


def test_segmentation_pipeline_keeps_masks_aligned_under_augmentation(devkit_root, tmp_path):
    p = make_pipelines(
        make_config(
            tmp_path,
            devkit_root,
            name="voc_segmentation",
            grayscale=True,
            batch_size=2,
            train_crop="inception",
            inception_crop_area=(0.3, 1.0),
        ),
        devices=jax.local_devices()[:2],
    )
    assert p.info.num_classes == 20 and p.info.has_mask and p.info.image_shape == (16, 16, 1)
    for epoch in range(3):
        batch = next(p.train(epoch))
        assert batch["image"].shape == (2, 1, 16, 16, 1) and set(np.unique(batch["mask"])) <= {0.0, 1.0}
        # Bright pixels are the objects: after the same random crop and flip, mask and image
        # still agree except along outlines, where bilinear resizing blends the two.
        agreement = np.mean((batch["image"] > 0.5) == (batch["mask"] > 0.5))
        assert agreement > 0.9
    batch = next(p.evals["validation"]())
    present = sorted(
        tuple(np.flatnonzero(row)) for row, v in zip(batch["label"].reshape(-1, 20), batch["valid"].ravel()) if v
    )
    assert present == [(), (BOTTLE - 1, DOG - 1)]  # image 4 has no object, image 5 a dog and a bottle


def test_another_devkit_in_the_same_data_dir_is_prepared_afresh(devkit_root, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(devkit_root / "VOCdevkit", other / "VOCdevkit")
    (other / "VOCdevkit" / "VOC2009" / "ImageSets" / "Segmentation" / "val.txt").write_text("2009_000005\n")
    config = lambda root: make_config(tmp_path, root, name="voc_segmentation", batch_size=2)  # noqa: E731
    first = make_pipelines(config(devkit_root), devices=jax.local_devices()[:2])
    second = make_pipelines(config(other), devices=jax.local_devices()[:2])
    assert first.info.num_examples["validation"] == 2 and second.info.num_examples["validation"] == 1
    assert first.info.source != second.info.source
    again = make_pipelines(config(devkit_root), devices=jax.local_devices()[:2])
    assert again.info.source == first.info.source  # the unchanged devkit: its prepared data are reused


def test_unknown_year_and_class_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="config.data.voc.year is 2013"):
        make_pipelines(make_config(tmp_path, tmp_path, name="voc_segmentation", voc=dict(year=2013)))
    with pytest.raises(ValueError, match="subset of the VOC classes"):
        make_pipelines(make_config(tmp_path, tmp_path, name="voc_multilabel", voc=dict(classes=("kitten",))))


def broken_devkit(root: Path, damage) -> Path:
    devkit = write_devkit(root)
    return damage(devkit)


def truncate_jpeg(devkit):
    path = devkit / "JPEGImages" / "2009_000002.jpg"
    path.write_bytes(path.read_bytes()[:200])
    return path


def shrink_mask(devkit):
    path = devkit / "SegmentationClass" / "2009_000002.png"
    Image.open(path).crop((0, 0, 10, 10)).save(path)
    return path


def remove_jpeg(devkit):
    path = devkit / "JPEGImages" / "2009_000002.jpg"
    path.unlink()
    return path


@pytest.mark.parametrize(
    "damage,error,match",
    [
        (truncate_jpeg, DataError, "is not a readable image"),
        (shrink_mask, DataError, r"is 10x10 pixels but its image .* is 24x32"),
        (remove_jpeg, FileNotFoundError, "is missing"),
    ],
)
def test_bad_files_stop_with_an_error_naming_them_or_are_skipped(tmp_path, caplog, damage, error, match):
    bad = broken_devkit(tmp_path / "voc", damage)
    config = make_config(tmp_path, tmp_path / "voc", name="voc_segmentation", batch_size=2)
    one_device = jax.local_devices()[:1]
    with pytest.raises(error, match=match) as raised:
        make_pipelines(config, devices=one_device)
    assert str(bad) in str(raised.value)
    shutil.rmtree(tmp_path / "tfds")
    config.data.skip_bad_examples = True
    with caplog.at_level(logging.WARNING):
        p = make_pipelines(config, devices=one_device)
    assert p.info.num_examples["train"] == 2
    assert "Skipped 1 of 3 examples" in caplog.text and str(bad) in caplog.text


@pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"real VOC samples not found at {SAMPLES} (they live beside the project)"
)
def test_real_voc_files(tmp_path):
    ids = sorted(p.stem for p in (SAMPLES / "JPEGImages").glob("*.jpg"))
    devkit = tmp_path / "VOCdevkit" / "VOC2011"
    (devkit / "ImageSets" / "Segmentation").mkdir(parents=True)
    for sub in ("JPEGImages", "SegmentationClass"):
        os.symlink(SAMPLES / sub, devkit / sub)
    (devkit / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids[:2]))
    (devkit / "ImageSets" / "Segmentation" / "val.txt").write_text(ids[2])
    builder = prepared("segmentation", tmp_path / "tfds", tmp_path, year=2011)
    voids = 0
    for split, names in (("train", ids[:2]), ("validation", ids[2:])):
        examples = read(builder, split)
        assert sorted(examples) == [f"{i}.jpg" for i in names]
        for filename, e in examples.items():
            with Image.open(SAMPLES / "SegmentationClass" / f"{filename[:-4]}.png") as png:
                assert png.mode == "P"
                expected = np.asarray(png)
            with Image.open(SAMPLES / "JPEGImages" / filename) as jpg:
                assert expected.shape == (jpg.height, jpg.width)
            np.testing.assert_array_equal(e["segmentation"][..., 0], expected)
            np.testing.assert_array_equal(e["mask"][..., 0], (expected > 0).astype(np.uint8))
            present = set(np.unique(expected).tolist())
            assert e["labels"].tolist() == sorted(k - 1 for k in present - {0, 255})
            voids += (expected == 255).sum()
    assert voids > 0  # the samples carry void pixels, which became foreground above
