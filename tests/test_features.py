"""A frozen InceptionV3's head trained on cached features (`config.cache_features`): the
features are computed once per dataset, split and backbone, the checkpoints are the whole
model's, and that model scores the images exactly as training on features said it would.

InceptionV3 at its smallest input (75x75), random weights, 3 classes of 'shapes'."""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from jaxvision import data, train
from jaxvision.data import default_data_config
from jaxvision.train.checkpoint import Checkpoints
from jaxvision.train.engine import build_engine
from jaxvision.train.run import open_run
from jaxvision.data.batches import folds, per_class
from jaxvision.train.features import held_in


def _config(data_dir: str) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed, config.batch_size, config.eval_batch_size, config.num_epochs = 0, 8, 8, 2
    config.task, config.loss = "classification", "binary_cross_entropy"
    config.cache_features = True
    config.data = default_data_config()
    config.data.update(
        dict(
            name="shapes",
            data_dir=data_dir,
            image_size=75,
            value_range=(-1.0, 1.0),
            random_flip=False,
            prefetch_to_device=0,
        )
    )
    config.data.shapes.update(dict(image_size=16, num_train=16, num_validation=8, num_test=12, label="dominant"))
    config.model = ml_collections.ConfigDict(dict(name="inception_v3", num_classes=3, freeze_backbone=True))
    config.optimizer = ml_collections.ConfigDict(dict(name="adamax", learning_rate=1e-2))
    config.monitor = ml_collections.ConfigDict(dict(metric="validation/accuracy", mode="max"))
    config.test_with = "last"
    return config


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """Each fit builds its steps afresh; the cache serves InceptionV3's compiles after the first."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    cache = root / "cache"
    os.environ["JAXVISION_CACHE"] = str(cache)
    try:
        config = _config(str(root / "tfds"))
        result = train.fit(config, str(root / "run"))
        files = sorted((cache / "features").iterdir())
        stamps = {f.name: f.stat().st_mtime_ns for f in files}
        again = train.fit(config, str(root / "again"))  # another run of the same: the cache serves it
        yield config, root, result, files, stamps, again
    finally:
        del os.environ["JAXVISION_CACHE"]


def test_features_are_computed_once_per_split_and_reused(trained):
    _, _, result, files, stamps, again = trained
    assert len(files) == 3 and {f.name.split("-")[1] for f in files} == {"train", "validation", "test"}
    with np.load(files[0]) as f:
        assert f["features"].shape[1] == 2048 and len(f["features"]) == len(f["label"])
    assert {f.name: f.stat().st_mtime_ns for f in files} == stamps  # not written again
    assert again.results["test"] == result.results["test"]


def test_the_head_learns_and_the_backbone_stays_bit_identical(trained):
    config, root, result, _, _, _ = trained
    history = [r for r in map(json.loads, open(root / "run" / "metrics.jsonl")) if r["split"] == "train"]
    assert history[-1]["loss"] < history[0]["loss"]
    checkpoints = Checkpoints(str(root / "run"), read_only=True)
    last = checkpoints.restore(result.state, "latest")[0]
    checkpoints.close()
    resolved = train.resolve(config)
    initial = build_engine(resolved, data.make_pipelines(resolved).info, 2).initial_state  # step 0, same seed
    for name in initial.params:
        same = jax.tree.all(jax.tree.map(np.array_equal, initial.params[name], last.params[name]))
        assert same == (name != "predictions"), name
    assert jax.tree.all(jax.tree.map(np.array_equal, initial.batch_stats, last.batch_stats))


def test_the_saved_model_scores_images_as_training_on_features_did(trained):
    config, root, result, _, _, _ = trained
    on_images = train.evaluate(config, str(root / "run"), split="test", which="latest", say=lambda _: None)
    for name in ("loss", "accuracy", "binary_accuracy"):
        # the same network on the same pixels; features went through another batching (float32 sums)
        assert on_images[name] == pytest.approx(result.results["test"][name], abs=1e-5), name


def test_augmented_copies_are_cached_once_each_and_cycled(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path / "cache"))
    config = _config(str(tmp_path / "tfds"))
    config.data.random_flip, config.feature_views, config.num_epochs = True, 2, 3
    train.fit(config, str(tmp_path / "run"))
    files = {
        f.name.split("-")[1] + ("-" + f.name.split("-")[2] if "copy" in f.name else ""): f
        for f in (tmp_path / "cache" / "features").iterdir()
    }
    assert sorted(files) == ["test", "train-copy0", "train-copy1", "validation"]
    copies = [np.load(files[f"train-copy{v}"]) for v in (0, 1)]
    assert copies[0]["features"].shape == copies[1]["features"].shape == (16, 2048)  # 2 steps of 8
    assert not np.allclose(copies[0]["features"], copies[1]["features"])  # other flips, other order
    np.testing.assert_array_equal(copies[0]["label"].sum(0), copies[1]["label"].sum(0))  # the same images


def test_what_cannot_be_cached_is_one_sentence(tmp_path):
    config = _config(str(tmp_path / "tfds"))
    config.data.random_flip = True
    with pytest.raises(ValueError, match="without augmentation: set config.data.random_flip=False"):
        train.fit(config, str(tmp_path / "a"))
    config.data.random_flip, config.feature_views = False, 3
    with pytest.raises(ValueError, match="feature_views=3 caches augmented copies .* but config.data augments nothing"):
        train.fit(config, str(tmp_path / "c"))
    config = _config(str(tmp_path / "tfds"))
    config.model.freeze_backbone = False
    with pytest.raises(ValueError, match="needs a model with freeze_backbone=True"):
        train.fit(config, str(tmp_path / "b"))


def test_a_frozen_autoencoder_encoder_caches_its_codes_and_scores_images_alike(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path / "cache"))
    config = _config(str(tmp_path / "tfds"))
    config.data.update(dict(image_size=16, value_range=(0.0, 1.0)))
    config.model = ml_collections.ConfigDict(
        dict(name="frozen_encoder_classifier", num_classes=3, filters=(4, 4, 4), pools=2, freeze_backbone=True)
    )
    result = train.fit(config, str(tmp_path / "run"))
    (train_file,) = [f for f in (tmp_path / "cache" / "features").iterdir() if "-train" in f.name]
    with np.load(train_file) as f:
        assert f["features"].shape == (16, 4 * 4 * 4)  # two 2x2 pools of 16x16, 4 channels: the flattened code
    on_images = train.evaluate(config, str(tmp_path / "run"), split="test", which="latest", say=lambda _: None)
    # the encoder run on pixels now, its codes cached then: the same numbers up to float32 sums
    assert on_images["loss"] == pytest.approx(result.results["test"]["loss"], abs=1e-5)


def test_train_per_class_trains_on_that_many_photos_of_each_class_and_reports_intervals(tmp_path, monkeypatch):
    from jaxvision import stats
    from jaxvision.research import heldout, results, runs

    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path / "cache"))
    config = _config(str(tmp_path / "tfds"))
    config.train_per_class, config.num_epochs = 4, 2  # batch 8 as the other tests: their compiles serve it
    config.report = ml_collections.ConfigDict(
        dict(
            table="t", row="two of each", columns=(("top-1", "validation/accuracy", None),), curves=("loss",), figure=""
        )
    )
    result = train.fit(config, str(tmp_path / "run"))
    (train_file,) = [f for f in (tmp_path / "cache" / "features").iterdir() if "-train" in f.name]
    with np.load(train_file) as f:
        cached = f["label"]
    # every training photo is cached; the head trains on at most 4 of each class: one step of 8 an epoch
    drawn = cached[per_class(cached, 4, config.seed)].sum(0)
    np.testing.assert_array_equal(drawn, np.minimum(cached.sum(0), 4))
    steps = [r["step"] for r in map(json.loads, open(tmp_path / "run" / "metrics.jsonl")) if r["split"] == "train"]
    assert len(cached) == 16 and 8 <= drawn.sum() < 16 and steps == [1, 2]
    with open_run(config, str(tmp_path / "run"), read_only=True) as run:  # what the schedule is laid out in
        assert run.pipelines.steps_per_epoch == 1
    resolved = train.resolve(config)
    runs.of(resolved).result(resolved, str(tmp_path / "run"))
    kept = heldout.correct(str(tmp_path / "run"), "validation")
    (table,) = results.tables_of(results.read(str(tmp_path / "run")))  # the run's results.json, read back
    estimate = table.rows[0].ours["top-1"]
    # the kept predictions score as the run's own evaluation of the same state did
    assert estimate.value == pytest.approx(result.results["validation"]["accuracy"], abs=1e-6)
    assert (estimate.low, estimate.high) == stats.wilson_interval(int(kept.sum()), len(kept)) and len(kept) == 8
    assert (tmp_path / "run" / "per_class-validation.png").is_file()
    assert "most often confused" in (tmp_path / "run" / "results.md").read_text()


def test_train_per_class_without_one_cached_view_is_one_sentence(tmp_path):
    config = _config(str(tmp_path / "tfds"))
    config.train_per_class, config.cache_features, config.feature_views = 2, True, 3
    with pytest.raises(ValueError, match="not 3 augmented copies: set config.feature_views=1"):
        train.resolve(config)


def test_steps_in_one_dispatch_train_the_head_as_steps_one_by_one(trained, tmp_path, monkeypatch):
    config, root, result, _, _, _ = trained
    monkeypatch.setenv("JAXVISION_CACHE", str(root / "cache"))  # the fixture's features
    config = config.copy_and_resolve_references()
    config.steps_per_dispatch = 2  # the epoch's two steps in one scan
    scanned = train.fit(config, str(tmp_path / "run"))
    # the same steps in the same order, compiled into one program: equal up to float32 rounding
    for a, b in zip(jax.tree.leaves(scanned.state.params), jax.tree.leaves(result.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(scanned.state.step) == int(result.state.step) == 4
    for split in ("train", "validation"):
        assert scanned.results[split]["loss"] == pytest.approx(result.results[split]["loss"], rel=1e-5)


def test_folds_deal_every_class_evenly_and_follow_the_seed():
    labels = np.repeat(np.arange(4), [5, 7, 3, 10])
    fold = folds(labels, 3, seed=0)
    for c in range(4):
        counts = np.bincount(fold[labels == c], minlength=3)
        assert counts.max() - counts.min() <= 1 and counts.sum() == (labels == c).sum()
    np.testing.assert_array_equal(fold, folds(labels, 3, seed=0))
    assert not np.array_equal(fold, folds(labels, 3, seed=1))


def test_held_in_keeps_every_copy_of_a_fold_photo_out_of_training():
    names = np.array([f"p{i}".encode() for i in range(12)])
    centred = {"name": names, "label": np.arange(12) % 3, "features": np.arange(12.0)[:, None]}
    rng = np.random.default_rng(0)
    copies = []
    for _ in range(2):  # each copy in its own order, one photo short (as a copy drops a batch's remainder)
        order = rng.permutation(12)[:11]
        copies.append({k: v[order] for k, v in centred.items()})
    kept, evals = held_in(copies, centred, count=3, fold=1, seed=0)
    inside = set(evals["fold"]["name"].tolist())
    # 4 photos of each class dealt to 3 folds: fold 1 gets the second of each
    assert len(inside) == 3 and sorted(evals["fold"]["label"].tolist()) == [0, 1, 2]
    for copy, view in zip(copies, kept):
        assert not inside & set(view["name"].tolist())
        assert set(view["name"].tolist()) == set(copy["name"].tolist()) - inside
        # rows stay whole: a photo's features and label travel with its name
        np.testing.assert_array_equal(view["features"][:, 0], [int(n[1:]) for n in view["name"].tolist()])


def test_cross_validation_trains_on_the_other_folds_and_never_reads_the_held_out_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path / "cache"))
    config = _config(str(tmp_path / "tfds"))
    config.data.random_flip, config.feature_views, config.num_epochs = True, 2, 2
    config.cv_folds, config.cv_fold = 2, 1
    config.monitor.metric = "fold/accuracy"
    result = train.fit(config, str(tmp_path / "run"))
    files = sorted((tmp_path / "cache" / "features").iterdir())
    # the centred view and the two copies of the training photos; no features of 'validation' or 'test'
    assert sorted(f.name.split("-")[1] + ("-" + f.name.split("-")[2] if "copy" in f.name else "") for f in files) == [
        "train",
        "train-copy0",
        "train-copy1",
    ]
    assert set(result.results) == {"train", "fold"}
    centred = np.load(next(f for f in files if "copy" not in f.name))
    assert len(set(centred["name"].tolist())) == len(centred["name"]) == 16  # one row per photo, named
    inside = folds(centred["label"], 2, config.seed) == 1
    epochs = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    scored = [r for r in epochs if r["split"] == "fold"]
    assert len(scored) == 2  # every epoch scores the fold
    # the fold's top-1 counts its own photos
    assert scored[-1]["accuracy"] * inside.sum() == pytest.approx(round(scored[-1]["accuracy"] * inside.sum()))
    # each copy holds every photo once (2 steps of 8), so an epoch is the photos outside the fold in steps of 8
    steps = [r["step"] for r in epochs if r["split"] == "train"]
    per_epoch = (~inside).sum() // 8
    assert 0 < inside.sum() < 16 and steps == [per_epoch, 2 * per_epoch]
    config.train_per_class, config.feature_views = 2, 1
    with pytest.raises(ValueError, match="cv_folds splits the cached features of every training photo"):
        train.resolve(config)
    config.train_per_class, config.cv_fold = 0, 2
    with pytest.raises(ValueError, match="a fold from 0 to cv_folds - 1"):
        train.resolve(config)
    config.cv_fold, config.optimizer.schedule = 1, "cosine"
    with pytest.raises(ValueError, match="would not end where it does in the full run"):
        train.resolve(config)


def test_features_computed_with_onednn_are_cached_apart_from_xlas(monkeypatch):
    """Their float32 sums run in another order: a run with JAXVISION_ONEDNN=1 must not read XLA's features."""
    from types import SimpleNamespace

    from jaxvision.models import onednn_conv
    from jaxvision.train.features import _cache_file

    info, key = SimpleNamespace(source="folder:abc", name="jaxvision_image_folder"), {"split": "train", "views": 1}
    monkeypatch.setattr(onednn_conv, "enabled", lambda: False)
    xla = _cache_file(info, "train", key)
    assert _cache_file(info, "train", key) == xla and _cache_file(info, "train", {**key, "views": 2}) != xla
    monkeypatch.setattr(onednn_conv, "enabled", lambda: True)
    assert _cache_file(info, "train", key) != xla
