"""Tiny versions of the experiments really train, and report what the paper's tables need.

Tiny: 16-32 px 'shapes' images, 4 examples, a few filters, one step, so that the file stays
within a few minutes on 2 CPU cores. The quickstart suite trains scaled copies of every run of
paper B's tables; through the command line, the paper B variants it leaves out (MAE loss,
U-Net). Every config at its real size, traced but not trained: tests/test_experiment_configs.py.
"""

from __future__ import annotations

import copy
import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvision import configs, main, train
from jaxvision.research import results, scheduled, suite, trained
from jaxvision.train.checkpoint import Checkpoints
from jaxvision.train.state import create_state, run_key
from jaxvision.weights import warmstart

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TFDS_DATA_DIR", path)
        yield path


@pytest.fixture(scope="module")
def quickstart(tfds_dir, tmp_path_factory):
    # the tiny run's features go to a cache of its own, and only while it runs: a cache left set
    # for the worker's later tests hid the converted ImageNet weights from test_pretrained_parity
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAXVISION_CACHE", str(tmp_path_factory.mktemp("cache")))
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


TABLE_1 = "Paper B, Table 1: reconstruction error on the validation images"
TABLE_2 = "Paper B, Table 2: multi-label classifiers (validation images)"
TABLE_3 = "Paper B, Table 3: segmentation of the validation images"
QUICKSTART_ROWS = {  # the row names of each table of the quickstart's results.md, in order
    TABLE_1: [
        "autoencoder of the 2048-code net: 512 codes at 64x64",
        "autoencoder of the 4096-code net: 1024 codes at 64x64",
        "autoencoder of the 8192-code net: 2048 codes at 64x64",
        "PCA, 2 components",
        "PCA, 3 components",
    ],
    TABLE_2: [
        "baseline: yes to every label",
        "baseline: the most frequent label set",
        "frozen encoder + dense",
        "encoder + dense, from scratch",
        "deep CNN",
        "AlexNet, ImageNet-pretrained (cited by the paper, not run)",
        "ImageNet InceptionV3 features, frozen, + dense sigmoid head (paper B's future work)",
    ],
    TABLE_3: ["binary cross-entropy", "Dice loss"],
}


def test_quickstart_writes_every_table_with_the_papers_rows(quickstart):
    config, workdir, message = quickstart
    assert "11 runs finished" in message
    results = open(os.path.join(workdir, "results.md")).read()
    table = {title: _table(results, title) for title in QUICKSTART_ROWS}
    assert {title: [r[0] for r in rows] for title, rows in table.items()} == QUICKSTART_ROWS
    assert [r[1] for r in table[TABLE_1][:3]] == ["0.0400", "0.0200", "0.0100"]  # the paper's MSE
    for row in table[TABLE_1]:  # ours: a finite error everywhere
        assert 0.0 < float(row[2]) < 1.0 and 0.0 < float(row[4]) < 1.0
    assert [r[1] for r in table[TABLE_2][2:6]] == ["0.4139", "0.4672", "0.6721", "0.8560"]
    assert table[TABLE_2][6][1] == "—"  # the paper has no ImageNet-features row: no paper number beside it
    assert all(0.0 <= float(r[2]) <= 1.0 for r in table[TABLE_2] if r[2] != "—")
    assert [(r[1], r[3]) for r in table[TABLE_3]] == [("0.5500", "0.3900"), ("0.6800", "0.5400")]  # Dice, IoU
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


def test_a_run_left_out_of_the_order_fails_its_claims_as_not_measured(quickstart, tmp_path):
    config, workdir, _ = quickstart
    shorter = str(tmp_path / "shorter")
    shutil.copytree(workdir, shorter)
    config = config.copy_and_resolve_references()
    config.suite.order = tuple(name for name in config.suite.order if name != "ae_2048")
    suite.write_report(config, shorter)
    claims = {c["text"]: c for c in results.read(shorter)["claims"]}
    first = claims["Table 1: the 2048-code autoencoder reconstructs worse than the 4096-code one (MSE)"]
    assert not first["holds"] and "ae_2048 validation/mean_squared_error: not measured" in first["shown"]
    assert sum("not measured" in c["shown"] for c in claims.values()) == 1


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


def _logged(workdir: str) -> list[dict]:
    """A run's metrics.jsonl without its clock readings."""
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in trained.history(workdir)]


def test_runs_side_by_side_log_the_numbers_of_runs_one_at_a_time(quickstart, tmp_path, monkeypatch):
    # The fixture ran the quickstart as many at once as this machine has cores; here two of its
    # runs go one at a time. Each computes on one core either way, so every number is the same
    # bit for bit (that the frozen encoder waited for its autoencoder: the test above).
    config, workdir, _ = quickstart
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path / "cache"))  # its codes computed again, not read
    config = copy.deepcopy(config)
    config.suite.order = ("ae_8192", "frozen_encoder")
    again = str(tmp_path / "again")
    assert scheduled.run(suite.resolved_runs(config, again), again, 1, print) is None
    for name in config.suite.order:
        assert _logged(os.path.join(again, name)) == _logged(os.path.join(workdir, name)), name


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


def test_reported_numbers_are_the_best_epochs_or_the_last(tmp_path):
    records = [
        {"step": 10 * (e + 1), "epoch": e, "split": split, "loss": loss}
        for e, (train_loss, val_loss) in enumerate([(0.9, 0.5), (0.6, 0.3), (0.2, 0.4)])
        for split, loss in (("train", train_loss), ("validation", val_loss))
    ]
    records.append({"step": 30, "epoch": 3, "split": "test", "loss": 0.35, "accuracy": 0.75})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    records = trained.history(str(tmp_path))
    # the best checkpoint holds epoch 1 (the lowest validation loss): its monitor counters say so
    checkpoints = Checkpoints(str(tmp_path))
    state = create_state({"params": {"w": jnp.ones(2)}, "batch_stats": {}}, optax.sgd(0.1), run_key(0))
    checkpoints.save(state, {"monitor": {"best": 0.3, "best_epoch": 1, "bad_epochs": 1}}, best=True)
    checkpoints.close()
    best = train.resolve(ml_collections.ConfigDict(dict(monitor=dict(metric="validation/loss", mode="min"))))
    epoch = trained.reported_epoch(best, str(tmp_path), records)
    assert epoch == 1
    assert trained.numbers(records, epoch) == {
        "train/loss": 0.6,
        "validation/loss": 0.3,
        "test/loss": 0.35,
        "test/accuracy": 0.75,
    }
    last = train.resolve(ml_collections.ConfigDict(dict(monitor=dict(metric="", mode="min"))))
    assert trained.numbers(records, trained.reported_epoch(last, str(tmp_path), records))["validation/loss"] == 0.4
    assert len(trained._train_epochs(records)) == 3  # the record's epochs_run
