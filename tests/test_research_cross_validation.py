"""The cross-validation summary of a suite: each setting's mean fold score after each number of
passes, read from the fold runs' own metrics.jsonl, the best named, and rendered as a table."""

import json

import ml_collections
import pytest

from jaxvision.research import cross_validation, tables


def _run(root, name: str, scores: dict[int, float]) -> None:
    run = root / name
    run.mkdir()
    with open(run / "metrics.jsonl", "w") as f:
        for epoch, score in scores.items():
            f.write(json.dumps({"step": epoch, "epoch": epoch, "split": "train", "accuracy": 1.0}) + "\n")
            f.write(json.dumps({"step": epoch, "epoch": epoch, "split": "fold", "accuracy": score}) + "\n")


def test_each_cell_is_the_folds_mean_at_the_end_of_that_pass_and_the_best_is_named(tmp_path):
    # one view: a pass is an epoch; two copies: a pass is two epochs (the score after epoch 2p - 1)
    _run(tmp_path, "one_a", {0: 0.50, 1: 0.60})
    _run(tmp_path, "one_b", {0: 0.70, 1: 0.80})
    _run(tmp_path, "two_a", {0: 0.10, 1: 0.55, 2: 0.20, 3: 0.90})
    _run(tmp_path, "two_b", {0: 0.10, 1: 0.67, 2: 0.20})  # stopped before its second pass ended
    spec = ml_collections.ConfigDict(
        dict(
            title="t",
            split="fold",
            metric="accuracy",
            settings=(("one view", 1, ("one_a", "one_b")), ("two copies", 2, ("two_a", "two_b"))),
            passes=(1, 2),
            used=("two copies", 1),
        )
    )
    found = cross_validation.summary(spec, str(tmp_path))
    one, two = found["rows"]
    assert [c["mean"] for c in one["cells"]] == pytest.approx([0.60, 0.70])
    assert (one["cells"][1]["low"], one["cells"][1]["high"]) == (0.60, 0.80)
    assert two["cells"][0]["mean"] == pytest.approx(0.61) and two["cells"][1] is None  # a fold short: no mean
    # the standard error of the mean of two folds is half their difference (sample sd / sqrt(2)): 0.10
    assert found["best"] == {"mean": pytest.approx(0.70), "se": pytest.approx(0.10), "label": "one view", "passes": 2}
    assert found["used"]["mean"] == pytest.approx(0.61) and found["used"]["stands"]  # 0.09 below, 0.10 allowed
    assert (tmp_path / found["figure"]["path"]).is_file()
    text = tables.cross_validation(found)
    assert "**0.7000 ± 0.1000 (0.600-0.800)**" in text and "not run" in text
    assert "runs two copies at 1 passes (0.6100, -0.0900): within one standard error of the best" in text
    _run(tmp_path, "one_c", {0: 0.70, 1: 0.70})  # a third fold: the best's standard error falls to 0.058
    spec.settings = (("one view", 1, ("one_a", "one_b", "one_c")), ("two copies", 2, ("two_a", "two_b")))
    found = cross_validation.summary(spec, str(tmp_path))
    assert found["best"]["mean"] == pytest.approx(0.70) and found["best"]["se"] == pytest.approx(0.1 / 3**0.5)
    assert not found["used"]["stands"] and "which should replace it" in tables.cross_validation(found)
