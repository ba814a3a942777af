"""Scoring a checkpoint on any images of the same layout: `--mode evaluate` on another folder
(split 'all'), `--mode predict`'s CSV, and one sentence for a class set that is not the
checkpoint's, a missing checkpoint and a task without classes."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxvision import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "configs", "tiny.py")
COLOURS = {"blue": (0, 0, 220), "green": (0, 200, 0), "red": (220, 0, 0)}


def make_folder(root, layout: dict[str, dict[str, int]], seed: int = 0) -> None:
    """`layout[split][class]` noisy images of the class's colour under root/split/class/."""
    rng = np.random.default_rng(seed)
    for split, classes in layout.items():
        for name, count in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                image = np.clip(np.array(COLOURS[name]) + rng.normal(0, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{name}_{i}.png")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    make_folder(root / "photos", {"train": {c: 8 for c in COLOURS}, "test": {c: 2 for c in COLOURS}})
    make_folder(root / "other", {"train": {c: 1 for c in COLOURS}, "extra": {"red": 2}}, seed=1)
    make_folder(root / "wrong", {"train": {"blue": 1, "green": 1}}, seed=2)
    args = [
        "--config",
        f"{TINY}:classification",
        "--config.data.name=folder",
        f"--config.data.folder.root={root / 'photos'}",
        f"--config.data.data_dir={root / 'tfds'}",
        "--config.data.eval_splits=('test',)",
        "--config.data.image_size=12",
        "--config.model.num_classes=3",
        "--config.monitor.metric=",
        "--config.num_epochs=3",
        "--config.eval_batch_size=4",
    ]
    workdir = str(root / "run")
    assert main.main(args + ["--workdir", workdir]) == 0
    return root, args, workdir


def _scored(args, workdir, capsys, *extra):
    assert main.main(args + ["--workdir", workdir, "--mode", "evaluate", "--checkpoint", "latest", *extra]) == 0
    return capsys.readouterr().out


def test_evaluate_another_folder_on_every_split(run, capsys):
    root, args, workdir = run
    out = _scored(args, workdir, capsys, f"--config.data.folder.root={root / 'other'}", "--split", "all")
    assert "all (latest checkpoint, step 9, 5 examples): accuracy" in out  # 3 train + 2 extra images
    record = json.load(open(os.path.join(workdir, "evaluation-all-latest.json")))
    assert record["examples"] == 5 and 0 <= record["accuracy"] <= 1
    # a split the run never evaluated, of the training folder itself
    out = _scored(args, workdir, capsys, "--split", "train")
    assert "train (latest checkpoint, step 9, 24 examples)" in out


def test_predictions_list_each_image_with_its_top_classes(run, capsys):
    root, args, workdir = run
    assert (
        main.main(
            args
            + [
                "--workdir",
                workdir,
                "--mode",
                "predict",
                "--checkpoint",
                "latest",
                "--split",
                "all",
                f"--config.data.folder.root={root / 'other'}",
            ]
        )
        == 0
    )
    path = os.path.join(workdir, "predictions-all-latest.csv")
    assert f"Predictions written: {path}" in capsys.readouterr().out
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 5
    assert sorted(r["file"] for r in rows) == sorted(
        os.path.join(split, c, f"{c}_{i}.png")
        for split, c, n in (("train", "blue", 1), ("train", "green", 1), ("train", "red", 1), ("extra", "red", 2))
        for i in range(n)
    )
    for row in rows:
        assert row["labels"] == row["file"].split(os.sep)[1]
        probabilities = [float(row[f"top{i}_probability"]) for i in (1, 2, 3)]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=1e-5)
        assert {row[f"top{i}"] for i in (1, 2, 3)} == set(COLOURS)
        assert "top4" not in row  # three classes: a top-3


def test_a_different_class_set_is_one_sentence(run, capsys):
    root, args, workdir = run
    argv = args + [
        "--workdir",
        workdir,
        "--mode",
        "evaluate",
        "--checkpoint",
        "latest",
        "--split",
        "all",
        f"--config.data.folder.root={root / 'wrong'}",
    ]
    assert main.main(argv) == 1
    err = capsys.readouterr().err
    assert "was trained on 3 classes (blue, green, red), but this dataset has 2 (blue, green)" in err
    assert "Traceback" not in err


def test_missing_checkpoints_and_class_free_tasks_are_one_sentence(run, tmp_path, capsys):
    _, args, workdir = run
    assert main.main(args + ["--workdir", workdir, "--mode", "evaluate"]) == 1  # best: none kept (no monitor)
    assert "has no best checkpoint: score the latest one instead (--checkpoint latest)" in capsys.readouterr().err
    assert main.main(args + ["--workdir", str(tmp_path), "--mode", "predict"]) == 1
    assert "holds no checkpoints: train there first" in capsys.readouterr().err
    argv = ["--config", f"{TINY}:segmentation", "--workdir", str(tmp_path), "--mode", "predict"]
    assert main.main(argv) == 1
    assert "--mode predict lists class probabilities, which a segmentation run has none of" in capsys.readouterr().err


def test_metrics_are_printed_even_where_they_cannot_be_written(run, capsys):
    _, args, workdir = run
    blocked = os.path.join(workdir, "evaluation-test-latest.json")
    os.mkdir(blocked)  # stands in for a read-only workdir (the tests run as root, who may write anywhere)
    try:
        assert main.main(args + ["--workdir", workdir, "--mode", "evaluate", "--checkpoint", "latest"]) == 0
    finally:
        os.rmdir(blocked)
    captured = capsys.readouterr()
    assert "test (latest checkpoint, step 9, 6 examples): accuracy" in captured.out
    expected = "warning: the metrics above were not saved: " + blocked + " cannot be written (Is a directory)"
    assert expected in captured.err
