"""The grain reader: tf.data's examples and guarantees, and training where TensorFlow is absent."""

import os
import subprocess
import sys

import jax
import jaxvision.data
import numpy as np
import pytest
from test_data_shapes import SIZE, image_keys, make_config

from jaxvision.data import DataError, make_pipelines, resolve_data_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWO = jax.local_devices()[:2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    make_pipelines(make_config(path))  # tf.data's copy
    make_pipelines(make_config(path, reader="grain"))  # the array_record copy beside it
    return path


@pytest.mark.parametrize(
    "data",
    [dict(image_size=24), dict(image_size=20, grayscale=True, value_range=(-1.0, 1.0), eval_crop="central")],
    ids=["rgb-resized", "grayscale-central-crop"],
)
def test_evaluation_batches_are_tf_datas(data_dir, data):
    tf_batches = list(make_pipelines(make_config(data_dir, **data), devices=TWO).evals["validation"]())
    grain_batches = list(
        make_pipelines(make_config(data_dir, reader="grain", **data), devices=TWO).evals["validation"]()
    )
    assert len(tf_batches) == len(grain_batches) == 2  # 13 examples padded to 2 batches of 8
    for a, b in zip(tf_batches, grain_batches):
        assert a.keys() == b.keys()
        for key in ("label", "mask", "valid"):  # PNG masks and labels: exact
            np.testing.assert_array_equal(a[key], b[key])
        # The images are JPEGs: tf.data decodes them with a fast integer IDCT, PIL with libjpeg's
        # accurate one, ~1 level of 255 apart on average and a few at edges (the bilinear resizes
        # themselves agree to 4e-4 levels).
        scale = 2.0 if data.get("value_range") else 1.0
        difference = np.abs(a["image"] - b["image"]) / scale
        assert difference.mean() < 2.5 / 255 and difference.max() < 16 / 255


def _by_name(pipelines, split) -> dict:
    return {
        name: {key: b[key].reshape(-1, *b[key].shape[2:])[i] for key in b if key != "name"}
        for b in pipelines.evals[split](with_names=True)
        for i, (name, valid) in enumerate(zip(b["name"].ravel(), b["valid"].ravel()))
        if valid
    }


def _folder(tmp_path):
    import test_data_folder as folder

    for i in range(3):
        folder.write(tmp_path / "classes" / "b_red" / f"{i}.png", folder.thirds())
    folder.write(tmp_path / "classes" / "a_blue" / "0.png", folder.thirds(left=folder.BLUE, right=folder.RED))
    return folder.make_config(tmp_path, tmp_path / "classes", eval_splits=("train",))


def _mask_folder(tmp_path):
    import test_data_mask_folder as masks

    return masks.config(tmp_path, masks.write_pool(tmp_path / "pool", 6), split=(0.5, 0.5))


def _voc(name):
    def make(tmp_path):
        import test_data_voc as voc

        return voc.make_config(tmp_path, voc.write_devkit(tmp_path / "devkit"), name=name, batch_size=2)

    make.__name__ = name
    return make


@pytest.mark.parametrize(
    "make", [_folder, _mask_folder, _voc("voc_multilabel"), _voc("voc_segmentation")], ids=lambda m: m.__name__
)
def test_every_dataset_reads_the_same_examples(make, tmp_path):
    config = make(tmp_path)
    split = config.data.eval_splits[0] if config.data.eval_splits else "validation"
    ours = make_pipelines(config, devices=TWO[:1])
    config.data.reader = "grain"
    theirs = make_pipelines(config, devices=TWO[:1])
    assert ours.info.class_names == theirs.info.class_names and ours.info.num_examples == theirs.info.num_examples
    a, b = _by_name(ours, split), _by_name(theirs, split)
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name]["label"], b[name]["label"])
        if "mask" in a[name]:
            np.testing.assert_array_equal(a[name]["mask"], b[name]["mask"])
        # JPEG decoders, as above; on these tiny sharp-edged test images tf.data's decoder is up
        # to 18 levels of 255 off (PIL's is within 2 of the pixels that were encoded).
        assert np.abs(a[name]["image"] - b[name]["image"]).mean() < 4 / 255


def test_training_reads_each_example_once_per_epoch_and_resumes_exactly(data_dir):
    plain = make_config(data_dir, reader="grain", random_flip=False)
    epochs = [image_keys(make_pipelines(plain, devices=TWO).train(epoch)) for epoch in (0, 1)]
    assert all(len(e) == len(set(e)) == 24 for e in epochs)  # 3 steps of 8 of the 29
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    plain.data.eval_splits = ("train",)
    every = image_keys(make_pipelines(plain, devices=TWO).evals["train"]())
    assert len(every) == 29 and set(epochs[0]) | set(epochs[1]) <= set(every)

    augmented = make_config(data_dir, reader="grain", train_crop="inception", inception_crop_area=(0.3, 1.0))
    p = make_pipelines(augmented, devices=TWO)
    whole = list(p.train(3))
    resumed = list(make_pipelines(augmented, devices=TWO).train(3, start_step=2))
    assert len(resumed) == len(whole) - 2
    for a, b in zip(whole[2:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("crop", ["central", "inception"])
def test_the_decoded_cache_changes_no_batch(data_dir, crop):
    config = make_config(data_dir, reader="grain", image_size=20, train_crop=crop)
    plain = make_pipelines(config, devices=TWO)
    config.data.cache_decoded = True
    cached = make_pipelines(config, devices=TWO)
    share = cached.train.args[0].shares["train"]
    for epoch, read in ((0, 24), (1, 29)):  # the first fills the cache, the second reads from it
        for a, b in zip(plain.train(epoch), cached.train(epoch), strict=True):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
        assert 24 <= len(share.cache) <= read  # 3 steps of 8 of the 29 examples each epoch
    assert share.cache[0]["image"].shape == ((20, 20, 3) if crop == "central" else (SIZE, SIZE, 3))


def test_two_processes_read_disjoint_shares_of_the_same_length(data_dir):
    config = make_config(data_dir, reader="grain", eval_batch_size=4)
    names, lengths = [], []
    for index in range(2):
        p = make_pipelines(config, process_index=index, process_count=2, devices=TWO)
        batches = list(p.evals["validation"](with_names=True))
        lengths.append(len(batches))
        names += [n for b in batches for n, v in zip(b["name"].ravel(), b["valid"].ravel()) if v]
    assert lengths[0] == lengths[1] and len(names) == len(set(names)) == 13


def test_bad_settings_are_one_sentence(data_dir, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="config.data.reader is 'grian': use one of tf, grain"):
        resolve_data_config(dict(reader="grian"))
    with pytest.raises(DataError, match="holds no prepared dataset"):
        make_pipelines(make_config(data_dir, reader="grain", prepared=str(tmp_path)))
    tfrecord = next((data_dir / "jaxvision_shapes").glob("*px*/*"))  # tf.data's copy
    with pytest.raises(DataError, match="prepared in tfrecord format; the grain reader reads array_record"):
        make_pipelines(make_config(data_dir, reader="grain", prepared=str(tfrecord)))
    monkeypatch.setitem(sys.modules, "jaxvision.data.sources", None)  # as where TensorFlow is absent
    monkeypatch.delattr(jaxvision.data, "sources", raising=False)
    with pytest.raises(DataError, match="needs TensorFlow to prepare the dataset, and it is not installed here"):
        make_pipelines(make_config(data_dir, reader="grain"))


TRAIN_WITHOUT_TENSORFLOW = """
import json, os, sys
from jaxvision import main
code = main.main(sys.argv[1:])
print(json.dumps(dict(code=code, tensorflow=[m for m in sys.modules if m.split(".")[0] == "tensorflow"])))
"""


def _site_packages_without_tensorflow(tmp_path) -> str:
    """A copy (of links) of this environment's packages with TensorFlow left out."""
    import tensorflow_datasets

    site = os.path.dirname(os.path.dirname(tensorflow_datasets.__file__))
    folder = tmp_path / "site-packages"
    folder.mkdir()
    for entry in os.listdir(site):
        if entry.split("-")[0].split(".")[0].lower() not in ("tensorflow", "tensorflow_cpu", "tf_keras"):
            os.symlink(os.path.join(site, entry), folder / entry)
    return str(folder)


def test_a_run_trains_where_tensorflow_is_not_installed(data_dir, tmp_path):
    tiny = os.path.join(ROOT, "tests", "configs", "tiny.py:classification")
    prepared = make_pipelines(_tiny_data(tiny, data_dir)).info.source  # prepared here, with TensorFlow
    env = dict(os.environ, PYTHONPATH=f"{_site_packages_without_tensorflow(tmp_path)}:{ROOT}", JAX_PLATFORMS="cpu")
    argv = [
        tiny,
        "--workdir",
        str(tmp_path / "run"),
        "--config.data.reader=grain",
        f"--config.data.prepared={prepared}",
    ]
    done = subprocess.run(
        [sys.executable, "-S", "-c", TRAIN_WITHOUT_TENSORFLOW, "--config", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == '{"code": 0, "tensorflow": []}', done.stdout[-2000:]
    assert (tmp_path / "run" / "metrics.jsonl").is_file()
    assert os.listdir(tmp_path / "run" / "checkpoints")


def _tiny_data(spec, data_dir):
    from jaxvision import configs

    config = configs.load_config(spec)
    config.data.data_dir, config.data.reader = str(data_dir), "grain"
    return config


def test_train_per_class_draws_the_same_photos_in_both_readers_and_shares_them_out(tmp_path, data_dir):
    import test_data_folder as folder

    for i in range(5):
        folder.write(tmp_path / "classes" / "red" / f"{i}.png", folder.thirds(left=(200 + 10 * i, 0, 0)))
    for i in range(3):
        folder.write(tmp_path / "classes" / "blue" / f"{i}.png", folder.thirds(left=(0, 0, 200 + 10 * i)))
    config = folder.make_config(tmp_path, tmp_path / "classes", eval_splits=("train",), random_flip=False)
    every = _by_name(make_pipelines(config, devices=TWO[:1]), "train")
    config.train_per_class = 2
    drawn = {}
    for reader in ("tf", "grain"):
        config.data.reader = reader
        drawn[reader] = _by_name(make_pipelines(config, devices=TWO[:1]), "train")
        shares = [
            set(_by_name(make_pipelines(config, process_index=p, process_count=2, devices=TWO[:1]), "train"))
            for p in (0, 1)
        ]
        assert not shares[0] & shares[1] and shares[0] | shares[1] == set(drawn[reader])  # one draw, shared out
        pipelines = make_pipelines(config, devices=TWO[:1])
        trained = image_keys(pipelines.train(0))
        assert pipelines.steps_per_epoch == 2 and len(trained) == 4  # 4 drawn photos, batches of 2
        assert set(trained) == set(image_keys(pipelines.evals["train"]()))
    assert set(drawn["tf"]) == set(drawn["grain"]) and set(drawn["tf"]) < set(every)
    per_class = np.sum([drawn["tf"][name]["label"] for name in drawn["tf"]], axis=0)
    np.testing.assert_array_equal(per_class, [2, 2])
    multi_label = make_config(data_dir)
    multi_label.train_per_class = 2
    for reader in ("tf", "grain"):
        multi_label.data.reader = reader
        with pytest.raises(DataError, match="draws photos of each class, which .* does not have one of"):
            make_pipelines(multi_label, devices=TWO[:1])


@pytest.mark.parametrize("reader", ["tf", "grain"])
def test_named_training_batches_name_each_example_and_change_nothing_else(data_dir, reader):
    config = make_config(data_dir, reader=reader, random_flip=False)  # training reads as evaluation does
    config.data.eval_splits = ("train",)
    pipelines = make_pipelines(config, devices=TWO)
    by_name = _by_name(pipelines, "train")
    named, plain = list(pipelines.train(0, with_names=True)), list(pipelines.train(0))
    assert len(named) == len(plain) == 3
    for a, b in zip(named, plain):
        assert set(a) == set(b) | {"name"}
        for key in b:
            np.testing.assert_array_equal(a[key], np.asarray(b[key]))
        # each name is that of the photo whose pixels it travels with (features.cached keys folds on it)
        for name, image in zip(a["name"].ravel(), a["image"].reshape(-1, *a["image"].shape[2:])):
            np.testing.assert_array_equal(image, by_name[name]["image"])
