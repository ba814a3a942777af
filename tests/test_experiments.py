"""Every experiment config stays runnable, and the quickstart suite leaves its report.

Two tiers, so the whole file stays within a few minutes on 2 CPU cores:
  * every variant of every file in experiments/ (and every run of the suites) is checked at
    its real size without compiling anything: the config resolves, the model takes its
    arguments and its output fits the task's target, the optimizer builds, and every metric
    the report asks for is one the task computes;
  * tiny versions (16-32 px 'shapes' images, 4 examples, a few filters, one step) really
    train: the quickstart suite, which trains scaled copies of every run of paper B's tables,
    and, through the command line, the paper B variants it leaves out (MAE loss, U-Net).
    InceptionV3 (paper A) is only traced here: compiling its training step on a CPU takes
    minutes; tests/test_models_inception.py trains it.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxvision import configs, main, train
from jaxvision.weights import warmstart
from jaxvision.research import outcomes, suite
from jaxvision.data import resolve_data_config
from jaxvision.models import build_model
from jaxvision.train.optim import make_optimizer
from jaxvision.train.tasks import make_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.py")))


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
    produced = set(jax.eval_shape(task.metrics, out, batch)) | {"loss"} | set(outcomes.PREDICTED)
    for column, source, _ in run.report.columns:
        split, name = source.split("/", 1)
        assert split in ("train", "validation", "test") and name in produced, (column, source)
    if run.monitor.metric:
        assert run.monitor.metric.split("/", 1)[1] in produced
    for metric in run.report.curves:
        assert metric in produced
    assert run.report.figure in ("", "reconstruction", "segmentation")
    if run.report.figure:
        assert run.report.label
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


def test_reported_numbers_are_the_best_epochs_or_the_last(tmp_path):
    records = [
        {"step": 10 * (e + 1), "epoch": e, "split": split, "loss": loss}
        for e, (train_loss, val_loss) in enumerate([(0.9, 0.5), (0.6, 0.3), (0.2, 0.4)])
        for split, loss in (("train", train_loss), ("validation", val_loss))
    ]
    records.append({"step": 30, "epoch": 3, "split": "test", "loss": 0.35, "accuracy": 0.75})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    best = train.resolve(ml_collections.ConfigDict(dict(monitor=dict(metric="validation/loss", mode="min"))))
    assert outcomes.reported_epoch(best, records) == 1
    assert outcomes.numbers(best, str(tmp_path)) == {
        "train/loss": 0.6,
        "validation/loss": 0.3,
        "test/loss": 0.35,
        "test/accuracy": 0.75,
    }
    last = train.resolve(ml_collections.ConfigDict(dict(monitor=dict(metric="", mode="min"))))
    assert outcomes.numbers(last, str(tmp_path))["validation/loss"] == 0.4
    assert outcomes.epochs_run(str(tmp_path)) == 3


# --- tiny runs that really train ---------------------------------------------------------------


def tiny(run: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A quickstart run shrunk to one step on 4 'shapes' images; task, loss, optimizer and
    model kind stay as they are."""
    run = ml_collections.ConfigDict(run)
    model = run.model.name if run.get("model") is not None else ""
    size = {"deep_cnn": 32, "inception_v3": 75}.get(model, 16)  # 5 pools; InceptionV3's smallest input
    run.data.image_size = size
    run.data.prefetch_to_device = 0
    run.data.shapes.update(dict(image_size=16, num_train=4, num_validation=4, num_test=4))
    run.batch_size, run.eval_batch_size = 4, 4
    if run.get("kind") == "pca":
        run.components = (2, 3)
        return run
    if run.get("kind") == "prior":
        return run
    run.num_epochs = 1
    if model == "inception_v3":  # random weights: no test downloads ImageNet's
        del run["init"]
    if run.model.name == "segmenter":
        run.model.filters = (4, 4, 4, 4)
    if run.model.name == "deep_cnn":
        run.model.filters = (4, 4, 4, 4, 4)
    return run


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    old = os.environ.get("TFDS_DATA_DIR")
    os.environ["TFDS_DATA_DIR"] = path
    yield path
    if old is None:
        os.environ.pop("TFDS_DATA_DIR")
    else:
        os.environ["TFDS_DATA_DIR"] = old


@pytest.fixture(scope="module")
def quickstart(tfds_dir, tmp_path_factory):
    os.environ["JAXVISION_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # features of the tiny run
    config = configs.load_config(os.path.join(ROOT, "experiments", "quickstart.py"))
    for name in config.suite.order:
        config.runs[name] = tiny(config.runs[name])
    workdir = str(tmp_path_factory.mktemp("quickstart"))
    message, interrupted = suite.run(config, workdir)
    assert not interrupted
    return config, workdir, message


def _table(markdown: str, title: str) -> list[list[str]]:
    """The body rows of the markdown table under `### title`, as cells."""
    lines = markdown.split(f"### {title}\n\n", 1)[1].splitlines()[2:]  # past the header and |---|
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_quickstart_writes_every_table_with_the_papers_rows(quickstart):
    config, workdir, message = quickstart
    assert "11 runs finished" in message
    results = open(os.path.join(workdir, "results.md")).read()
    table1 = _table(results, "Paper B, Table 1: reconstruction error on the validation images")
    assert [r[0] for r in table1] == [
        "autoencoder of the 2048-code net: 512 codes at 64x64",
        "autoencoder of the 4096-code net: 1024 codes at 64x64",
        "autoencoder of the 8192-code net: 2048 codes at 64x64",
        "PCA, 2 components",
        "PCA, 3 components",
    ]
    assert [r[1] for r in table1[:3]] == ["0.0400", "0.0200", "0.0100"]  # the paper's MSE
    for row in table1:  # ours: a finite error everywhere
        assert 0.0 < float(row[2]) < 1.0 and 0.0 < float(row[4]) < 1.0
    table2 = _table(results, "Paper B, Table 2: multi-label classifiers (validation images)")
    assert [r[0] for r in table2] == [
        "baseline: yes to every label",
        "baseline: the most frequent label set",
        "frozen encoder + dense",
        "encoder + dense, from scratch",
        "deep CNN",
        "AlexNet, ImageNet-pretrained (cited by the paper, not run)",
        "ImageNet InceptionV3 features, frozen, + dense sigmoid head (paper B's future work)",
    ]
    assert [r[1] for r in table2[2:6]] == ["0.4139", "0.4672", "0.6721", "0.8560"]
    assert table2[6][1] == "—"  # the paper has no ImageNet-features row: no paper number beside it
    assert all(0.0 <= float(r[2]) <= 1.0 for r in table2 if r[2] != "—")
    table3 = _table(results, "Paper B, Table 3: segmentation of the validation images")
    assert [(r[0], r[1], r[3]) for r in table3] == [
        ("binary cross-entropy", "0.5500", "0.3900"),
        ("Dice loss", "0.6800", "0.5400"),
    ]
    assert "embedded 'shapes'" in results and "rmsprop lr 0.001" in results and "1 of 1 epochs" in results


def test_quickstart_checks_every_claim_from_its_own_numbers(quickstart):
    config, workdir, message = quickstart
    checked = open(os.path.join(workdir, "claims.md")).read()
    rows = [line for line in checked.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    assert len(rows) == len(config.suite.claims) == 14
    for row, claim in zip(rows, config.suite.claims):
        assert row.startswith(f"| {claim['text']} |") and row.rstrip(" |").endswith(("✔", "✘"))
        assert "not measured" not in row  # every number behind a claim was produced by this run
    assert checked in open(os.path.join(workdir, "report.md")).read() and checked in message


def test_quickstart_stays_within_its_budget_of_steps():
    """The default run's size, so that it keeps fitting ~10 minutes of 2 CPU cores."""
    config = configs.load_config(os.path.join(ROOT, "experiments", "quickstart.py"))
    steps = 0
    for name in config.suite.order:
        run = config.runs[name]
        if run.get("kind") in suite.KINDS or run.get("cache_features"):  # no training, or a head on features
            continue
        shapes = resolve_data_config(run.data).shapes
        steps += run.num_epochs * (shapes.num_train // run.batch_size)
    # 5,084 steps of batch 16 at 64x64, with the ImageNet features and the report, took 8.75
    # minutes of 2 quiet cores on 2026-11-30 (11.3 before tf.data's autotuner was turned off).
    assert steps <= 5_200, steps


def test_quickstart_report_links_figures_that_exist(quickstart):
    _, workdir, _ = quickstart
    text = open(os.path.join(workdir, "report.md")).read()
    linked = [part.split(")", 1)[0] for part in text.split("](")[1:]]
    images = [p for p in linked if p.endswith(".png")]
    assert "figures/reconstructions.png" in images and "figures/segmentation.png" in images
    assert len([p for p in images if p.endswith("curves.png")]) == 9  # every trained run
    for path in linked:
        assert os.path.isfile(os.path.join(workdir, path)), path
    assert "scaled for 2 CPU cores" in text and "claims, checked" in text


def test_frozen_encoder_starts_from_the_autoencoders_encoder(quickstart):
    _, workdir, _ = quickstart

    def encoder(run: str, checkpoint: str):
        init = ml_collections.ConfigDict(
            dict(workdir=os.path.join(workdir, run), checkpoint=checkpoint, params=("encoder",))
        )
        return jax.tree.leaves(warmstart._source(init)[0]["encoder"])

    trained = encoder("frozen_encoder", "latest")
    for a, b in zip(encoder("ae_8192", "best"), trained):  # borrowed, then left alone by training
        np.testing.assert_array_equal(a, b)
    assert len(trained) == 8  # the four convolutions' kernels and biases


TINY_OVERRIDES = [
    "--config.data.name=shapes",
    "--config.data.image_size=16",
    "--config.data.shapes.image_size=16",
    "--config.data.shapes.num_train=4",
    "--config.data.shapes.num_validation=4",
    "--config.data.shapes.num_test=4",
    "--config.data.prefetch_to_device=0",
    "--config.batch_size=4",
    "--config.eval_batch_size=4",
    "--config.num_epochs=1",
]


@pytest.mark.parametrize(
    "spec, extra",
    [
        ("voc_autoencoder.py:code4096_mae", []),
        ("voc_segmentation.py:unet_dice", ["--config.model.filters=(4, 4, 4, 4)"]),
    ],
)
def test_a_single_variant_trains_and_reports_through_the_command_line(spec, extra, tfds_dir, tmp_path, capsys):
    workdir = str(tmp_path / "run")
    argv = ["--config", os.path.join(ROOT, "experiments", spec), "--workdir", workdir] + TINY_OVERRIDES + extra
    assert main.main(argv) == 0
    assert "Training finished at step 1" in capsys.readouterr().out
    for name in ("curves.png", "results.md", "config.json", "metrics.jsonl"):
        assert os.path.isfile(os.path.join(workdir, name))
    assert os.path.isfile(os.path.join(workdir, "reconstruction.png" if "autoencoder" in spec else "segmentation.png"))
    results = open(os.path.join(workdir, "results.md")).read()
    assert ("MAE loss" in results) if "mae" in spec else ("U-Net, Dice loss" in results)
    os.remove(os.path.join(workdir, "curves.png"))
    assert main.main(argv + ["--mode", "report"]) == 0  # redrawn from the workdir alone
    assert os.path.isfile(os.path.join(workdir, "curves.png"))


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
    runs = suite._resolved_runs(train.resolve(config), str(tmp_path))
    assert {run.seed for run in runs.values()} == {2} and len(runs) == len(config.suite.order)
