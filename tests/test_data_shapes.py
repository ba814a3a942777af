"""The embedded dataset and the pipeline's guarantees: shares, padding, order, resume, devices."""

import hashlib

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxvision.data import DataError, default_data_config, make_pipelines, resolve_data_config, shapes
from jaxvision.data.sources import make_source

SIZE = 32
SPLIT_SIZES = dict(num_train=29, num_validation=13, num_test=6)


def make_config(data_dir, batch_size=8, eval_batch_size=8, seed=0, **data):
    config = ml_collections.ConfigDict(dict(seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size))
    config.data = default_data_config()
    config.data.update(dict(data_dir=str(data_dir), image_size=SIZE, prefetch_to_device=0))
    config.data.shapes.update(dict(image_size=SIZE, **SPLIT_SIZES))
    config.data.update(data)
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    make_pipelines(make_config(path))  # prepares the tiny dataset once for the module
    return path


def load_split(data_dir, split):
    builder = shapes.JaxvisionShapes(config=shapes.ShapesConfig.make(SIZE, **SPLIT_SIZES), data_dir=str(data_dir))
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def image_keys(batches):
    """Content hashes of the real (valid) images in a list of batches."""
    keys = []
    for batch in batches:
        images, valid = np.asarray(batch["image"]), np.asarray(batch["valid"])
        keys += [
            hashlib.sha1(im.tobytes()).hexdigest()
            for im, v in zip(images.reshape(-1, *images.shape[2:]), valid.ravel())
            if v
        ]
    return keys


def test_render_is_deterministic_and_seed_dependent():
    a = shapes.render_example(np.random.default_rng([SIZE, 0, 5]), SIZE)
    b = shapes.render_example(np.random.default_rng([SIZE, 0, 5]), SIZE)
    c = shapes.render_example(np.random.default_rng([SIZE, 0, 6]), SIZE)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["segmentation"], b["segmentation"])
    assert not np.array_equal(a["image"], c["image"])


def test_default_sizes_use_the_listed_builder_config(tmp_path):
    builder = make_source(resolve_data_config(dict(data_dir=str(tmp_path)))).builder
    assert builder.builder_config is shapes.JaxvisionShapes.BUILDER_CONFIGS[0]
    assert builder.builder_config.num_train == 2000 and builder.builder_config.image_size == 128


def test_prepared_dataset_is_identical_in_a_fresh_directory(data_dir, tmp_path):
    first = load_split(data_dir, "validation")
    make_pipelines(make_config(tmp_path))
    second = load_split(tmp_path, "validation")
    assert [e["id"] for e in first] == [e["id"] for e in second]
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["segmentation"], y["segmentation"])


def test_splits_sizes_and_labels_agree_with_masks(data_dir):
    fractions = []
    for split, n in zip(shapes.SPLITS, SPLIT_SIZES.values()):
        examples = load_split(data_dir, split)
        assert len(examples) == n and len({e["id"] for e in examples}) == n
        for e in examples:
            seg = e["segmentation"][..., 0]
            assert e["image"].shape == (SIZE, SIZE, 3) and seg.max() <= len(shapes.CLASS_NAMES)
            np.testing.assert_array_equal(e["mask"][..., 0], (seg > 0).astype(np.uint8))
            pixels = np.bincount(seg.ravel(), minlength=4)[1:]
            assert sorted(e["labels"].tolist()) == np.flatnonzero(pixels).tolist()
            assert pixels[e["label"]] == pixels.max() > 0  # the dominant object's class
            fractions.append(e["mask"].mean())
    # Foreground is a minority everywhere and about a tenth on average (see shapes' docstring).
    assert max(fractions) < 0.6 and 0.03 < np.mean(fractions) < 0.3


def test_all_three_classes_and_label_combinations_occur(data_dir):
    examples = load_split(data_dir, "train")
    assert {int(e["label"]) for e in examples} == {0, 1, 2}
    assert len({tuple(sorted(e["labels"].tolist())) for e in examples}) >= 4


def test_batches_have_the_contract_shapes_and_value_range(data_dir):
    p = make_pipelines(make_config(data_dir, value_range=(-1.0, 1.0)))
    batch = next(p.train(0))
    assert batch["image"].shape == (4, 2, SIZE, SIZE, 3) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (4, 2, 3) and batch["mask"].shape == (4, 2, SIZE, SIZE, 1)
    np.testing.assert_array_equal(batch["valid"], np.ones((4, 2)))
    assert -1.0 <= batch["image"].min() < -0.5 and 0.5 < batch["image"].max() <= 1.0
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0} and set(np.unique(batch["label"])) <= {0.0, 1.0}
    assert p.info.num_examples == {"train": 29, "validation": 13, "test": 6}
    assert p.info.image_shape == (SIZE, SIZE, 3) and p.info.num_classes == 3 and p.info.multi_label
    assert p.steps_per_epoch == 29 // 8 and p.eval_steps == {"validation": 2, "test": 1}


def test_dominant_label_is_one_hot(data_dir):
    p = make_pipelines(make_config(data_dir, shapes=dict(label="dominant")))
    labels = next(p.evals["validation"]())["label"].reshape(-1, 3)
    np.testing.assert_array_equal(labels.sum(-1), np.ones(8))
    assert not p.info.multi_label


@pytest.mark.parametrize("num_devices", [1, 4])
def test_device_axis_and_prefetch_to_devices(data_dir, num_devices):
    devices = jax.local_devices()[:num_devices]
    p = make_pipelines(make_config(data_dir, prefetch_to_device=2), devices=devices)
    batch = next(p.train(0))
    assert batch["image"].shape == (num_devices, 8 // num_devices, SIZE, SIZE, 3)
    assert isinstance(batch["image"], jax.Array) and batch["image"].sharding.device_set == set(devices)
    sums = jax.pmap(lambda x: x.sum(), devices=devices)(batch["valid"])
    np.testing.assert_array_equal(np.asarray(sums), np.full(num_devices, 8 // num_devices))


def test_batch_not_divisible_by_devices_is_a_clear_error(data_dir):
    with pytest.raises(ValueError, match="config.batch_size=6 is not divisible"):
        make_pipelines(make_config(data_dir, batch_size=6))


def test_padded_evaluation_counts_every_example_once(data_dir):
    p = make_pipelines(make_config(data_dir, eval_batch_size=4))
    batches = list(p.evals["validation"]())
    assert len(batches) == p.eval_steps["validation"] == 4  # 13 examples -> 4 batches of 4
    valid = np.concatenate([b["valid"].ravel() for b in batches])
    np.testing.assert_array_equal(valid, [1.0] * 13 + [0.0] * 3)
    keys = image_keys(batches)
    assert len(keys) == len(set(keys)) == 13
    padding = batches[-1]["image"].reshape(4, -1)[1:]
    assert not padding.any()


@pytest.mark.parametrize("split", ["validation", "train"])
def test_process_shares_are_disjoint_and_cover_the_split(data_dir, split):
    one_device = jax.local_devices()[:1]
    config = make_config(data_dir, batch_size=6, eval_batch_size=6, eval_splits=(split,))
    whole = image_keys(make_pipelines(config, devices=one_device).evals[split]())
    shares = [
        image_keys(make_pipelines(config, process_index=i, process_count=3, devices=one_device).evals[split]())
        for i in range(3)
    ]
    assert sum(len(s) for s in shares) == len(whole) == len(set().union(*shares))
    assert set().union(*shares) == set(whole)


def test_every_process_gets_the_same_number_of_batches(data_dir):
    # 13 validation examples over 3 processes: shares of 5, 4 and 4, padded to 2 batches of 4.
    steps = [
        len(
            list(
                make_pipelines(
                    make_config(data_dir, 12, 12, eval_splits=("validation",)), process_index=i, process_count=3
                ).evals["validation"]()
            )
        )
        for i in range(3)
    ]
    assert steps == [2, 2, 2]


def test_training_order_comes_from_seed_and_epoch(data_dir):
    def epoch(seed, number, start_step=0):
        p = make_pipelines(make_config(data_dir, seed=seed))
        return [b["image"] for b in p.train(number, start_step)]

    first = epoch(0, 0)
    assert len(first) == 3
    for x, y in zip(first, epoch(0, 0)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], epoch(0, 1)[0])
    assert not np.array_equal(first[0], epoch(1, 0)[0])
    resumed = epoch(0, 0, start_step=1)  # exact resume: the same batches from step 1 on
    assert len(resumed) == 2
    for x, y in zip(first[1:], resumed):
        np.testing.assert_array_equal(x, y)


def test_train_epoch_is_a_permutation_of_the_share(data_dir):
    p = make_pipelines(
        make_config(data_dir, random_flip=False, eval_batch_size=29, eval_splits=("train",)),
        devices=jax.local_devices()[:1],
    )
    trained = image_keys(p.train(0))
    assert len(trained) == 24 == len(set(trained))  # 3 full batches of 8; the remainder is dropped
    assert set(trained) <= set(image_keys(p.evals["train"]()))


def test_too_large_batch_and_unknown_split_are_clear_errors(data_dir):
    with pytest.raises(DataError, match="fewer than one batch of 32"):
        make_pipelines(make_config(data_dir, batch_size=32))
    with pytest.raises(ValueError, match="'valid' .*its splits are train, validation, test"):
        make_pipelines(make_config(data_dir, eval_splits=("valid",)))
    with pytest.raises(ValueError, match="Unknown key config.data.imagesize"):
        make_pipelines(make_config(data_dir, imagesize=3))


def test_background_contrast_scales_the_background_only():
    from jaxvision.data.shapes import render_example

    full = render_example(np.random.default_rng(7), 64, presence=0.5)
    faint = render_example(np.random.default_rng(7), 64, presence=0.5, background=0.1)
    assert np.array_equal(full["segmentation"], faint["segmentation"])  # the same scene
    objects = full["segmentation"] > 0
    assert objects.any() and (~objects).any()
    # Objects are drawn over the background, so their pixels do not change at all; the
    # background's spread shrinks by about the factor (pixel noise, added last, is not scaled).
    assert np.array_equal(full["image"][objects], faint["image"][objects])
    spread = [float(np.std(x["image"][~objects].astype(np.float32), axis=0).mean()) for x in (full, faint)]
    assert spread[1] < 0.4 * spread[0], spread
    assert shapes.ShapesConfig.make(64, background=0.1).name.endswith("_background0.1")
    assert "background" not in shapes.ShapesConfig.make(64).name  # prepared data of before keep their names
    with pytest.raises(ValueError, match=r"data.shapes.background \(0.0\) over 0 and at most 1"):
        shapes.ShapesConfig.make(64, background=0.0)
