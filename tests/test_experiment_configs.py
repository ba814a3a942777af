"""Every experiment config stays runnable at its real size, without compiling anything.

Every variant of every file in experiments/ (and every run of the suites) is checked: the config
resolves, the model takes its arguments and its output fits the task's target, the optimizer
builds, and every metric the report asks for is one the task computes; the quickstart keeps to
its budget of steps and its seed is every run's. InceptionV3 (paper A) is only traced here:
compiling its training step on a CPU takes minutes; tests/test_models_inception.py trains it.
Tiny versions that really train: tests/test_experiment_runs.py.
"""

from __future__ import annotations

import glob
import importlib.util
import os

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from jaxvision import configs, main, train
from jaxvision.data import resolve_data_config
from jaxvision.models import build_model
from jaxvision.research import suite, trained
from jaxvision.research.runs import UNTRAINED
from jaxvision.train.optim import make_optimizer
from jaxvision.train.tasks import make_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# experiments/_*.py are helpers the experiment files load, not experiment files
FILES = sorted(
    p for p in glob.glob(os.path.join(ROOT, "experiments", "*.py")) if not os.path.basename(p).startswith("_")
)


def _module(path):
    spec = importlib.util.spec_from_file_location(f"_exp_{os.path.basename(path)[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _specs() -> list[str]:
    specs = []
    for path in FILES:
        variants = _module(path).VARIANTS
        # the quickstart's default (no variant) is not one of its variants
        specs += ([path] if not variants or path.endswith("quickstart.py") else []) + [f"{path}:{v}" for v in variants]
    return specs


def _runs(config) -> list[tuple[str, ml_collections.ConfigDict]]:
    if suite.is_suite(config):
        return [(name, config.runs[name]) for name in config.suite.order]
    return [("", config)]


def _num_classes(data) -> int | None:
    if data.name in ("shapes", "voc_multilabel"):
        return 3 if data.name == "shapes" else len(data.voc.classes)
    return {"oxford_flowers102": 102}.get(data.name)


def _check_abstractly(run: ml_collections.ConfigDict) -> None:
    """The run at its real size, traced but never compiled."""
    run = train.resolve(run)
    resolve_data_config(run.data)
    size, channels = run.data.image_size, 1 if run.data.grayscale else 3
    if run.get("kind") == "pca":
        assert run.components and all(k > 0 for k in run.components)
        return
    if run.get("kind") == "prior":
        assert run.split in (run.data.eval_splits or ("validation",))
        return
    kwargs = run.model.to_dict()
    model = build_model(kwargs.pop("name"), **kwargs)
    x = jax.ShapeDtypeStruct((2, size, size, channels), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(x.shape), train=False))
    out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(x.shape), train=False), variables)
    task = make_task(run.task, run.loss)
    targets = {"mask": (2, size, size, 1), "image": x.shape}
    if task.target == "label":
        targets["label"] = (2, _num_classes(run.data) or run.model.num_classes)
    target = targets[task.target]
    assert out.shape == target, (run.report.row, out.shape, target)
    make_optimizer(run.optimizer, model, variables["params"], steps_per_epoch=10, num_epochs=run.num_epochs)
    batch = {
        "image": x,
        task.target: jax.ShapeDtypeStruct(target, jnp.float32),
        "valid": jax.ShapeDtypeStruct((2,), jnp.float32),
    }
    produced = set(jax.eval_shape(task.metrics, out, batch)) | {"loss"} | set(trained.PREDICTED)
    for column, source, _ in run.report.columns:
        split, name = source.split("/", 1)
        evaluated = ("train", "validation", "test") + (("fold",) if run.cv_folds else ())  # cv_folds: its fold
        assert split in evaluated and name in produced, (column, source)
    if run.monitor.metric:
        assert run.monitor.metric.split("/", 1)[1] in produced
    for metric in run.report.curves:
        assert metric in produced
    if make_task(run.task, run.loss).figure:
        assert run.report.label  # the figure's name for the run
    if run.get("init") is not None:
        assert set(run.init.get("params", ())) <= set(variables["params"])
        assert run.init.get("imagenet", "") in ("", "auto", "keras", "tf2015")


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: os.path.basename(s))
def test_every_variant_builds_at_its_real_size(spec):
    for _, run in _runs(configs.load_config(spec)):
        _check_abstractly(run)


@pytest.mark.parametrize("path", [p for p in FILES if _module(p).VARIANTS], ids=os.path.basename)
def test_an_unknown_variant_is_one_clear_sentence(path):
    with pytest.raises(ValueError, match="Unknown variant 'nope'.*use one of"):
        configs.load_config(f"{path}:nope")


def test_a_suite_is_not_evaluated_as_one_experiment(capsys):
    assert main.main(["--config", os.path.join(ROOT, "experiments", "quickstart.py"), "--mode", "evaluate"]) == 1
    assert "runs several experiments" in capsys.readouterr().err


def test_quickstart_stays_within_its_budget_of_steps():
    """The default run's size, so that it keeps fitting ~10 minutes of 2 CPU cores."""
    config = configs.load_config(os.path.join(ROOT, "experiments", "quickstart.py"))
    steps = 0
    for name in config.suite.order:
        run = config.runs[name]
        if run.get("kind") in UNTRAINED or run.get("cache_features"):  # no training, or a head on features
            continue
        shapes = resolve_data_config(run.data).shapes
        steps += run.num_epochs * (shapes.num_train // run.batch_size)
    # 5,084 steps of batch 16 at 64x64, with the ImageNet features and the report, took 8.75
    # minutes of 2 quiet cores on 2026-11-30 (11.3 before tf.data's autotuner was turned off).
    assert steps <= 5_200, steps


@pytest.mark.skipif(
    not os.path.isdir(os.path.join(ROOT, "..", "shared", "data", "flowers17")),
    reason="the real photos of ../shared/data are not on this machine",
)
def test_real_photo_configs_point_at_the_shared_data():
    for variant, classes in (("flowers17", 12), ("flowers102", 102), ("flowers102_scratch", 102)):
        config = configs.load_config(os.path.join(ROOT, "experiments", f"flowers_real.py:{variant}"))
        assert os.path.isdir(config.data.folder.root) and config.model.num_classes == classes


def test_the_quickstarts_seed_is_every_runs(tmp_path):
    """`--config.seed=N` repeats the whole quickstart with other initialisations and orders."""
    config = train.resolve(configs.load_config(os.path.join(ROOT, "experiments", "quickstart.py")))
    configs.apply_override(config, "seed", "2")
    found = suite.resolved_runs(train.resolve(config), str(tmp_path))
    assert {run.seed for run in found.values()} == {2} and len(found) == len(config.suite.order)


def test_the_heads_cross_validation_reads_the_training_photos_alone_and_holds_out_every_fold():
    flowers = os.path.join(ROOT, "experiments", "flowers_real.py")
    head = train.resolve(configs.load_config(f"{flowers}:flowers102"))
    config = configs.load_config(f"{flowers}:flowers102_cv")
    held_out = {}
    for run in config.runs.values():
        r = train.resolve(run)
        assert r.data.eval_splits == (r.data.train_split,) == (head.data.train_split,)  # never 'validation'
        assert not r.monitor.metric and r.num_epochs == r.feature_views * max(config.suite.cross_validation.passes)
        held_out.setdefault(r.feature_views, []).append((r.cv_fold, r.cv_folds))
        if r.feature_views > 1:  # the head run's own augmented copies, so their cached features are shared
            for key in ("train_crop", "inception_crop_area", "random_flip", "image_size"):
                assert r.data[key] == head.data[key], key
            assert (r.seed, r.batch_size) == (head.seed, head.batch_size)
    assert {views: sorted(f) for views, f in held_out.items()} == {v: [(k, 5) for k in range(5)] for v in (1, 3, 6)}
    used_label, used_passes = config.suite.cross_validation.used
    assert used_label in [s[0] for s in config.suite.cross_validation.settings]
    assert used_passes in config.suite.cross_validation.passes and f"{head.feature_views} augmented" in used_label
    assert head.num_epochs == head.feature_views * used_passes


def test_paper_a_recipe_on_the_real_photos_is_flowers_inceptions_unchanged():
    """`flowers102_paper[_ce]` change where the photos come from and what is reported, nothing that trains."""
    flowers = os.path.join(ROOT, "experiments", "flowers_real.py")
    for loss, suffix in (("bce_softmax", "_paper"), ("ce", "_paper_ce")):
        paper = train.resolve(configs.load_config(os.path.join(ROOT, "experiments", f"flowers_inception.py:{loss}")))
        ours = train.resolve(configs.load_config(f"{flowers}:flowers102{suffix}"))
        for key in ("num_epochs", "batch_size", "loss", "seed", "test_with"):
            assert ours[key] == paper[key], key
        assert ours.optimizer.to_dict() == paper.optimizer.to_dict() and ours.optimizer.name == "adamax"
        assert ours.init.to_dict() == paper.init.to_dict() and ours.init.imagenet == "auto"
        for key in ("image_size", "train_crop", "eval_crop", "central_crop_fraction", "random_flip", "value_range"):
            assert ours.data[key] == paper.data[key], key
        model, theirs = ({k: v for k, v in c.model.to_dict().items() if k != "num_classes"} for c in (ours, paper))
        assert model == theirs and not model["freeze_backbone"] and model.get("train_batch_norm", True)
        assert ours.data.eval_splits == ("validation",) and not ours.monitor.metric  # nothing chosen on held-out
    assert configs.load_config(f"{flowers}:paper_a_recipe").suite.order == ("paper", "paper_ce")
    assert {"paper", "paper_ce"} <= set(configs.load_config(f"{flowers}:paper_a").suite.order)
    alone, in_suite = (
        train.resolve(c).to_dict()
        for c in (
            configs.load_config(f"{flowers}:flowers17_paper"),
            configs.load_config(f"{flowers}:flowers17_recipe").runs.paper,
        )
    )
    assert alone == in_suite  # a run of the variant alone resumes as the suite's run
