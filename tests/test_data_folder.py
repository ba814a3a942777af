"""The class-folder source (its three layouts, real Oxford-102 files) and the preprocessing
options, checked on images whose every pixel is known."""

import logging
import re
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image

from jaxvision.data import DataError, default_data_config, make_pipelines
from jaxvision.data.folder import JaxvisionImageFolder, scan

FLOWERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "flowers102"
ONE_DEVICE = jax.local_devices()[:1]
RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)


def thirds(height=40, width=60, left=RED, middle=GREEN, right=BLUE):
    """An image in three vertical bands of colour."""
    image = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    image[:, :third], image[:, third : 2 * third], image[:, 2 * third :] = left, middle, right
    return image


def write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def make_config(tmp_path, root, batch_size=2, eval_batch_size=2, **data):
    config = ml_collections.ConfigDict(dict(seed=0, batch_size=batch_size, eval_batch_size=eval_batch_size))
    config.data = default_data_config()
    config.data.update(dict(name="folder", data_dir=str(tmp_path / "tfds"), image_size=6, prefetch_to_device=0))
    config.data.folder.root = str(root)
    config.data.update(data)
    return config


def red_green_blue(pipelines):
    """The first evaluated image of class 'b_red' (red on the left, blue on the right)."""
    for batch in pipelines.evals["train"]():
        for image, label in zip(batch["image"][0], batch["label"][0]):
            if label[1] == 1:
                return image
    raise AssertionError("no image of class b_red")


def images_of(batches):
    return [
        im for b in batches for im, v in zip(b["image"].reshape(-1, *b["image"].shape[2:]), b["valid"].ravel()) if v
    ]


@pytest.fixture(scope="module")
def class_root(tmp_path_factory):
    """<root>/<class>/*.png: 'b_red' holds three red-green-blue images, 'a_blue' one reversed."""
    root = tmp_path_factory.mktemp("classes")
    for i in range(3):
        write(root / "b_red" / f"{i}.png", thirds())
    write(root / "a_blue" / "0.png", thirds(left=BLUE, right=RED))
    return root


def test_the_data_section_is_resolved_once_and_a_resolved_one_is_passed_down(class_root, tmp_path, monkeypatch):
    from jaxvision import train
    from jaxvision.data import config as data_config

    checks, real = [], data_config.check_data_config
    monkeypatch.setattr(data_config, "check_data_config", lambda data: checks.append(data) or real(data))
    make_pipelines(make_config(tmp_path, class_root, eval_splits=("train",)), devices=ONE_DEVICE)
    assert len(checks) == 1  # a plain config: once, however many layers read its data
    resolved = train.resolve(make_config(tmp_path, class_root, eval_splits=("train",)))
    assert train.resolve(resolved) is resolved
    p = make_pipelines(resolved, devices=ONE_DEVICE)
    assert len(checks) == 1 and p.info.num_examples == {"train": 4}  # taken as it is


def test_class_layout_labels_follow_sorted_folder_names(class_root, tmp_path):
    p = make_pipelines(make_config(tmp_path, class_root, eval_splits=("train",)), devices=ONE_DEVICE)
    assert p.info.class_names == ("a_blue", "b_red") and p.info.num_examples == {"train": 4}
    batches = list(p.evals["train"]())
    for batch in batches:
        for image, label in zip(batch["image"][0], batch["label"][0]):
            # The left edge is blue exactly for class 0 ('a_blue').
            assert np.argmax(image[3, 0]) == (2 if label[0] == 1 else 0) and label.sum() == 1


def test_split_layout(tmp_path):
    root = tmp_path / "splits"
    for split, count in (("train", 2), ("test", 1)):
        for name in ("daisy", "rose"):
            for i in range(count):
                write(root / split / name / f"{i}.png", thirds())
    write(root / "test" / "tulip" / "0.png", thirds())
    config = scan(str(root))
    assert config.class_names == ("daisy", "rose", "tulip")
    assert sorted(config.files) == ["test", "train"]
    assert sorted(config.files["test"]) == [("test/daisy/0.png", 0), ("test/rose/0.png", 1), ("test/tulip/0.png", 2)]
    assert len(config.files["train"]) == 4


def test_oxford_layout_takes_labels_and_splits_from_the_mat_files(tmp_path):
    root = tmp_path / "flowers"
    labels = np.array([3, 1, 2, 3, 1, 2])  # image ids 1-6
    root.mkdir()
    scipy.io.savemat(root / "imagelabels.mat", {"labels": labels[None]})
    scipy.io.savemat(root / "setid.mat", {"trnid": [[1, 2]], "valid": [[3, 6]], "tstid": [[4, 5]]})
    for image_id in (1, 2, 3, 4, 5):  # id 6 is absent: the splits keep what is present
        write(root / "images" / str(labels[image_id - 1]) / f"image_{image_id:05d}.jpg", thirds())
    config = scan(str(root))
    assert config.class_names == ("1", "2", "3")
    assert config.files == {
        "train": [("images/1/image_00002.jpg", 0), ("images/3/image_00001.jpg", 2)],
        "validation": [("images/2/image_00003.jpg", 1)],
        "test": [("images/1/image_00005.jpg", 0), ("images/3/image_00004.jpg", 2)],
    }
    (root / "images" / "3" / "image_00001.jpg").rename(root / "images" / "2" / "image_00001.jpg")
    with pytest.raises(DataError, match=re.escape(str(root / "images" / "2" / "image_00001.jpg")) + ".*class 3"):
        scan(str(root))


def test_central_crop_and_resize(class_root, tmp_path):
    p = make_pipelines(
        make_config(tmp_path, class_root, eval_crop="central", central_crop_fraction=1.0, eval_splits=("train",)),
        devices=ONE_DEVICE,
    )
    # The centred 40x40 square of a 40x60 red-green-blue image spans x in [10, 50): 10 red,
    # 20 green and 10 blue columns, which resize to 6 columns as 1.5 red, 3 green, 1.5 blue.
    colours = np.argmax(red_green_blue(p)[3], axis=-1)
    assert colours[0] == 0 and colours[5] == 2
    np.testing.assert_array_equal(colours[2:4], [1, 1])
    config = make_config(tmp_path, class_root, eval_splits=("train",))
    whole = red_green_blue(make_pipelines(config, devices=ONE_DEVICE))
    np.testing.assert_array_equal(np.argmax(whole[3], axis=-1), [0, 0, 1, 1, 2, 2])


def test_value_range_and_grayscale(class_root, tmp_path):
    def first(**data):
        p = make_pipelines(make_config(tmp_path, class_root, eval_splits=("train",), **data), devices=ONE_DEVICE)
        return images_of(p.evals["train"]())[0]

    unit, signed, gray = first(), first(value_range=(-1.0, 1.0)), first(grayscale=True)
    # float32 arithmetic on values in [0, 1]: agreement to 1e-6 is what rounding allows.
    np.testing.assert_allclose(signed, 2 * unit - 1, atol=1e-6)
    assert gray.shape == (6, 6, 1)
    # ITU-R 601 luma weights; float32 sums of three terms below 1 agree to 1e-5.
    np.testing.assert_allclose(gray[..., 0], unit @ np.array([0.2989, 0.587, 0.114]), atol=1e-5)
    assert unit.max() == pytest.approx(200 / 255, abs=1e-6)


def test_random_flips_mirror_training_images_only(class_root, tmp_path):
    config = make_config(tmp_path, class_root, batch_size=4, eval_splits=("train",))
    p = make_pipelines(config, devices=ONE_DEVICE)
    originals = images_of(p.evals["train"]())
    flips = 0
    for epoch in range(4):
        for image in images_of(p.train(epoch)):
            if not any(np.array_equal(image, o) for o in originals):
                assert any(np.array_equal(image, o[:, ::-1]) for o in originals)
                flips += 1
    assert 0 < flips < 16


def test_corrupt_image_names_the_file_or_is_skipped(class_root, tmp_path, caplog):
    root = tmp_path / "bad"
    for path in class_root.rglob("*.png"):
        write(root / path.relative_to(class_root), np.asarray(Image.open(path)))
    broken = root / "b_red" / "1.png"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DataError, match=re.escape(str(broken)) + " is not a readable image"):
        make_pipelines(make_config(tmp_path, root), devices=ONE_DEVICE)
    with caplog.at_level(logging.WARNING):
        p = make_pipelines(make_config(tmp_path, root, skip_bad_examples=True), devices=ONE_DEVICE)
    assert p.info.num_examples == {"train": 3} and "Skipped 1 of 4 examples" in caplog.text


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        make_pipelines(make_config(tmp_path, tmp_path / "nowhere"))


def test_an_empty_class_folder_is_refused_by_name(tmp_path):
    write(tmp_path / "root" / "a_blue" / "1.png", thirds())
    (tmp_path / "root" / "b_empty").mkdir()
    with pytest.raises(DataError, match=r"the class folder 'b_empty' holds no images .*: add its images or remove"):
        scan(str(tmp_path / "root"))
    # a class missing from one split but present in another is a class all the same
    write(tmp_path / "split" / "train" / "a" / "1.png", thirds())
    write(tmp_path / "split" / "train" / "b" / "1.png", thirds())
    write(tmp_path / "split" / "test" / "a" / "1.png", thirds())
    (tmp_path / "split" / "test" / "b").mkdir()
    assert scan(str(tmp_path / "split")).class_names == ("a", "b")


@pytest.mark.skipif(
    not FLOWERS.is_dir(), reason=f"real Oxford-102 photos not found at {FLOWERS} (they live beside the project)"
)
def test_real_oxford_flowers_folder(tmp_path):
    # The official files with the photos of four classes (linked, not copied): preparing all
    # 2,858 photos would cost the suite a minute and test nothing more.
    root = tmp_path / "flowers102"
    (root / "images").mkdir(parents=True)
    for name in ("imagelabels.mat", "setid.mat", "cat_to_name.json"):
        (root / name).symlink_to(FLOWERS / name)
    for c in ("1", "2", "3", "4"):
        (root / "images" / c).mkdir()
        for photo in (FLOWERS / "images" / c).iterdir():
            (root / "images" / c / photo.name).symlink_to(photo)
    labels = scipy.io.loadmat(root / "imagelabels.mat")["labels"].ravel()
    set_ids = scipy.io.loadmat(root / "setid.mat")
    present = {int(p.stem[6:]) for p in (root / "images").rglob("image_*.jpg")}
    assert {labels[i - 1] for i in present} == {1, 2, 3, 4}
    config = make_config(tmp_path, root, image_size=32)
    p = make_pipelines(config, devices=ONE_DEVICE)
    builder = JaxvisionImageFolder(config=scan(str(root)), data_dir=config.data.data_dir)
    assert p.info.num_classes == 102 and p.info.class_names[0] == "pink primrose"
    for split, key in (("train", "trnid"), ("validation", "valid"), ("test", "tstid")):
        expected = present & set(set_ids[key].ravel().tolist())
        assert p.info.num_examples[split] == len(expected) > 0
        ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        seen = {int(Path(e["file_name"].decode()).stem[6:]): int(e["label"]) for e in tfds.as_numpy(ds)}
        assert set(seen) == expected
        assert all(label == labels[i - 1] - 1 for i, label in seen.items())
    batch = next(p.evals["test"]())
    assert batch["image"].shape == (1, 2, 32, 32, 3) and batch["label"].shape == (1, 2, 102)
