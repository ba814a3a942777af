"""open_run: the one way a run is opened (training, scoring, warm start, reports)."""

from __future__ import annotations

import os

import pytest

from jaxvision import configs, train
from jaxvision.train.run import open_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "configs", "tiny.py")


def _config(tmp_path):
    config = configs.load_config(f"{TINY}:classification")  # not resolved: open_run resolves it
    config.data.data_dir = str(tmp_path / "tfds")
    return config


def test_a_run_is_opened_with_its_resolved_config_pipelines_engine_and_checkpoints(tmp_path):
    with open_run(_config(tmp_path), str(tmp_path / "run")) as run:
        assert run.config.checkpoint.keep == train.default_config().checkpoint.keep  # defaults filled in
        assert run.workdir == str(tmp_path / "run") and os.path.isdir(run.workdir)
        assert run.pipelines.steps_per_epoch > 0 and "validation" in run.pipelines.evals
        assert run.engine.metric_names and run.checkpoints.step() is None
        run.checkpoints.save(run.engine.initial_state, {"class_names": []})
    with open_run(_config(tmp_path), str(tmp_path / "run"), read_only=True, splits=("test",)) as scored:
        assert list(scored.pipelines.evals) == ["test"] and scored.pipelines.steps_per_epoch == 0
        assert scored.checkpoints.step() == 0


def test_opening_a_run_that_does_not_exist_to_read_it_is_one_sentence(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no checkpoints: train there first"):
        open_run(_config(tmp_path), str(tmp_path / "nowhere"), read_only=True)
    assert not (tmp_path / "nowhere").exists()  # reading never writes
