"""The image+mask folder source: both layouts, every mask encoding and foreground rule, the
seeded split, every bad pair named (or skipped), a changed folder prepared afresh, and the
real ECSSD photos when they lie beside the project."""

from __future__ import annotations

import logging
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from jaxvision.data import DataError, default_data_config, make_pipelines
from jaxvision.data.mask_folder import scan

ECSSD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ecssd"
ONE_DEVICE = jax.local_devices()[:1]


def scene(i: int, h: int = 12, w: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A dark image with a bright rectangle, and the rectangle's 0/1 mask."""
    mask = np.zeros((h, w), np.uint8)
    mask[2 + i % 3 : 8 + i % 3, 3 : 9 + i % 5] = 1
    image = np.where(mask[..., None] > 0, 220, 20).astype(np.uint8).repeat(3, -1)
    return image, mask


def write_pool(root: Path, n: int, mask_format=lambda m: (m * 255, "png")) -> Path:
    for i in range(n):
        image, mask = scene(i)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / f"{i:04d}.jpg", quality=95)
        values, ext = mask_format(mask)
        Image.fromarray(values.astype(np.uint8)).save(root / "masks" / f"{i:04d}.{ext}")
    return root


def config(tmp_path, root, **masks) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict(dict(seed=0, batch_size=2, eval_batch_size=2))
    c.data = default_data_config()
    c.data.update(
        dict(name="mask_folder", data_dir=str(tmp_path / "tfds"), image_size=8, prefetch_to_device=0, random_flip=False)
    )
    c.data.masks.root = str(root)
    c.data.masks.update(masks)
    return c


def masks_of(pipelines, split) -> dict[str, np.ndarray]:
    """file name -> mask [8, 8] of every example of the split (tfds stores them in its own order)."""
    return {
        n.decode(): m
        for b in pipelines.evals[split](with_names=True)
        for m, n, v in zip(b["mask"].reshape(-1, 8, 8), b["name"].ravel(), b["valid"].ravel())
        if v
    }


def test_one_pool_is_split_by_a_seeded_permutation_of_the_sorted_stems(tmp_path):
    root = write_pool(tmp_path / "pool", 10)
    first = scan(str(root), split=(0.8, 0.2), split_seed=3)
    assert {k: len(v) for k, v in first.pairs.items()} == {"train": 8, "validation": 2}
    assert scan(str(root), split=(0.8, 0.2), split_seed=3).pairs == first.pairs  # deterministic
    assert scan(str(root), split=(0.8, 0.2), split_seed=4).pairs != first.pairs
    three = scan(str(root), split=(0.6, 0.2, 0.2))
    assert sorted(p for s in three.pairs.values() for p in s) == sorted(p for s in first.pairs.values() for p in s)
    assert [len(three.pairs[s]) for s in ("train", "validation", "test")] == [6, 2, 2]
    with pytest.raises(ValueError, match=r"split is \(0.5, 0.2\): give 2 or 3 positive fractions that add up to 1"):
        scan(str(root), split=(0.5, 0.2))


def test_each_split_folder_is_a_split_and_masks_reach_the_batches(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        write_pool(tmp_path / "layout" / split, n)
    p = make_pipelines(config(tmp_path, tmp_path / "layout"), devices=ONE_DEVICE)
    assert p.info.num_examples == {"train": 4, "test": 2} and p.info.has_mask
    found = masks_of(p, "test")
    assert sorted(found) == ["test/images/0000.jpg", "test/images/0001.jpg"]
    for i in range(2):  # read back at 8x8, nearest: the same rectangle
        expected = tf.image.resize(scene(i)[1][..., None], (8, 8), method="nearest")[..., 0].numpy()
        np.testing.assert_array_equal(found[f"test/images/{i:04d}.jpg"], expected)


@pytest.mark.parametrize(
    "encoding, rule",
    [
        (lambda m: (m, "png"), {}),  # 0/1
        (lambda m: (m * 255, "png"), {}),  # 0/255
        (lambda m: (m * 255, "jpg"), {}),  # 0/255, lossy
        (lambda m: (m * 255, "bmp"), {}),
        (lambda m: (m * 7, "png"), {"foreground": "nonzero"}),  # a class-index map
        (lambda m: (m * 7 + (1 - m) * 3, "png"), {"foreground": "values", "foreground_values": (7,)}),
    ],
    ids=["0-1", "0-255", "jpeg", "bmp", "nonzero", "values"],
)
def test_every_mask_encoding_gives_the_same_foreground(tmp_path, encoding, rule):
    root = write_pool(tmp_path / "pool", 5, encoding)
    p = make_pipelines(config(tmp_path, root, split=(0.6, 0.4), **rule), devices=ONE_DEVICE)
    reference = write_pool(tmp_path / "reference", 5)
    q = make_pipelines(config(tmp_path, reference, split=(0.6, 0.4)), devices=ONE_DEVICE)
    found, wanted = masks_of(p, "validation"), masks_of(q, "validation")
    assert sorted(found) == sorted(wanted) and len(found) == 2
    for name, mask in found.items():
        assert np.mean(mask == wanted[name]) > 0.95  # JPEG blurs an edge pixel or two; the others are exact
        assert set(np.unique(mask)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no_mask", r"images/0002.jpg has no partner in .*masks: add the missing file"),
        ("no_image", r"masks/0009.png has no partner in .*images"),
        ("size", r"masks/0002.png is 5x5 pixels but its image .*0002.jpg is 16x12: masks must match"),
        ("unreadable", r"images/0002.jpg is not a readable image"),
        ("values", r"masks/0002.png holds the values \[0, 3, 9\], which fit no binary mask"),
    ],
)
def test_a_bad_pair_is_named_or_skipped(tmp_path, caplog, damage, message):
    root = write_pool(tmp_path / "pool", 5)
    if damage == "no_mask":
        (root / "masks" / "0002.png").unlink()
    elif damage == "no_image":
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "masks" / "0009.png")
    elif damage == "size":
        Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "masks" / "0002.png")
    elif damage == "unreadable":
        (root / "images" / "0002.jpg").write_bytes(b"not a jpeg")
    else:
        mask = Image.fromarray(np.array([[0, 3], [9, 0]], np.uint8)).resize((16, 12), Image.NEAREST)
        mask.save(root / "masks" / "0002.png")
    with pytest.raises(DataError, match=message):
        make_pipelines(config(tmp_path, root), devices=ONE_DEVICE)
    if damage in ("size", "unreadable", "values"):  # pairs that exist can be skipped
        with caplog.at_level(logging.WARNING):
            c = config(tmp_path, root, split=(0.6, 0.4))
            c.data.skip_bad_examples = True
            p = make_pipelines(c, devices=ONE_DEVICE)
        assert sum(p.info.num_examples.values()) == 4 and "Skipped 1 of" in caplog.text


def test_a_changed_folder_is_prepared_afresh(tmp_path):
    root = write_pool(tmp_path / "pool", 6)
    first = make_pipelines(config(tmp_path, root, split=(0.5, 0.5)), devices=ONE_DEVICE)
    (root / "images" / "0005.jpg").unlink()
    (root / "masks" / "0005.png").unlink()
    second = make_pipelines(config(tmp_path, root, split=(0.5, 0.5)), devices=ONE_DEVICE)
    assert sum(first.info.num_examples.values()) == 6 and sum(second.info.num_examples.values()) == 5
    assert first.info.source != second.info.source


@pytest.mark.skipif(not ECSSD.is_dir(), reason=f"the ECSSD photos are not at {ECSSD} (they live beside the project)")
def test_the_real_ecssd_photos(tmp_path):
    found = scan(str(ECSSD))
    assert {k: len(v) for k, v in found.pairs.items()} == {"train": 400, "validation": 100}
    c = config(tmp_path, ECSSD)
    c.data.image_size, c.data.eval_splits = 64, ("validation",)
    c.data.train_split = "train[:8]"
    p = make_pipelines(c, devices=ONE_DEVICE)
    batch = next(p.evals["validation"]())
    fraction = float(batch["mask"].mean())
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0} and 0.01 < fraction < 0.9  # 1-85 % foreground
