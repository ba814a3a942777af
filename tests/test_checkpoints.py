"""Checkpoints: the latest k and the best, exact restore, damaged ones moved aside, failed saves."""

import os
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.train.checkpoint import CheckpointError, Checkpoints
from jaxvision.train.state import TrainState, create_state, run_key

PARAMS = {"conv": {"kernel": jnp.ones((3, 3)), "bias": jnp.zeros(3)}, "head": {"kernel": jnp.ones((3, 2))}}


def _state(step: int, scale: float) -> TrainState:
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    params = jax.tree.map(lambda x: x * scale, PARAMS)
    state = create_state({"params": params, "batch_stats": {"bn": {"mean": jnp.full(3, scale)}}}, tx, run_key(0))
    return jax.device_get(state.replace(step=jnp.asarray(step, jnp.int32)))


def test_checkpoints_keep_latest_and_best_and_restore_exactly(tmp_path):
    checkpoints = Checkpoints(str(tmp_path), keep=2)
    for step in (1, 2, 3):
        checkpoints.save(_state(step, float(step)), {"epoch": step}, best=step == 2)
    checkpoints.wait()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "3"] and os.listdir(tmp_path / "best") == ["2"]
    target = _state(0, 0.0)
    latest, meta = checkpoints.restore(target)
    best, best_meta = checkpoints.restore(target, "best")
    checkpoints.close()
    assert meta == {"epoch": 3} and best_meta == {"epoch": 2}
    want = _state(3, 3.0)
    assert jax.tree.structure(latest) == jax.tree.structure(want)
    assert jax.tree.all(jax.tree.map(np.array_equal, latest, want))  # bit-exact, optimizer state included
    assert float(best.params["head"]["kernel"][0, 0]) == 2.0

    # A run with another optimizer cannot read it: one sentence, and the checkpoint stays.
    other = create_state({"params": PARAMS, "batch_stats": {}}, optax.sgd(0.1, momentum=0.9), run_key(0))
    reader = Checkpoints(str(tmp_path), read_only=True)
    with pytest.raises(
        CheckpointError,
        match=r"checkpoints/3 (has no|holds) \['.*: run with the config "
        r"it was trained with \(its config.json\), or start in a new --workdir",
    ):
        reader.restore(jax.device_get(other))
    # Nor can a run whose model has other shapes: the leaf that differs is named.
    wider = create_state(
        {"params": {**PARAMS, "head": {"kernel": jnp.ones((3, 4))}}, "batch_stats": {"bn": {"mean": jnp.ones(3)}}},
        optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)),
        run_key(0),
    )
    with pytest.raises(
        CheckpointError,
        match=r"holds \['params'\]\['head'\]\['kernel'\] with shape \(3, 2\), "
        r"but this config's run has \(3, 4\)",
    ):
        reader.restore(jax.device_get(wider))
    reader.close()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "3"]


@pytest.mark.parametrize("damage", ["truncated_data", "deleted_manifest"])
def test_a_damaged_checkpoint_is_moved_aside_and_the_one_before_is_used(tmp_path, damage):
    checkpoints = Checkpoints(str(tmp_path), keep=2)
    for step in (1, 2):
        checkpoints.save(_state(step, float(step)), {"epoch": step})
    checkpoints.wait()
    state_dir = tmp_path / "checkpoints" / "2" / "state"
    if damage == "deleted_manifest":
        (state_dir / "manifest.ocdbt").unlink()
    else:
        for data_file in (state_dir / "d").iterdir():
            data_file.write_bytes(data_file.read_bytes()[:10])
    said = []
    restored, meta = checkpoints.restore(_state(0, 0.0), say=said.append)
    assert int(restored.step) == 1 and meta == {"epoch": 1}
    assert len(said) == 1 and re.fullmatch(
        r"warning: the checkpoint .*checkpoints/2 is damaged \(.{1,125}\); it was "
        r"moved to .*checkpoints/2\.damaged; using the one before it, step 1\.",
        said[0],
    ), said
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2.damaged"]  # nothing deleted
    checkpoints.save(_state(2, 2.5), {"epoch": 2})  # the step is written afresh when the run reaches it
    checkpoints.wait()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2", "2.damaged"]
    shutil.rmtree(tmp_path / "checkpoints" / "2")
    # with nothing left to fall back on: one sentence, the checkpoint left as it is
    os.rename(tmp_path / "checkpoints" / "2.damaged", tmp_path / "checkpoints" / "2")
    (tmp_path / "checkpoints" / "1" / "state" / "manifest.ocdbt").unlink()
    (tmp_path / "checkpoints" / "2" / "state" / "manifest.ocdbt").unlink(missing_ok=True)
    reader = Checkpoints(str(tmp_path), read_only=True)
    with pytest.raises(CheckpointError, match=r"checkpoints/1 is damaged \(.*\) and no earlier latest one is left"):
        reader.restore(_state(0, 0.0), say=said.append)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]  # read-only: nothing moved
    checkpoints.close()
    reader.close()


def test_a_failed_save_says_the_previous_checkpoint_is_intact(tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    checkpoints = Checkpoints(str(tmp_path), keep=2)
    checkpoints.save(_state(1, 1.0), {"epoch": 1})
    checkpoints.wait()

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ocp.CheckpointManager, "save", disk_full)
    with pytest.raises(
        CheckpointError,
        match=r"Saving the checkpoint of step 2 in .*checkpoints failed "
        r"\(\[Errno 28\] No space left on device\); the previous checkpoint "
        r"\(step 1\) is intact",
    ):
        checkpoints.save(_state(2, 2.0), {"epoch": 2})
    monkeypatch.undo()
    restored, meta = checkpoints.restore(_state(0, 0.0))
    checkpoints.close()
    assert int(restored.step) == 1 and meta == {"epoch": 1}


def test_an_unusable_workdir_is_one_sentence_before_any_work(tmp_path):
    from jaxvision.train.checkpoint import writable_workdir

    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointError, match="is a file, not a folder: give a folder for the run"):
        writable_workdir(str(tmp_path / "file"))
    with pytest.raises(CheckpointError, match=r"file/run cannot be written \(Not a directory\): give a folder you can"):
        writable_workdir(str(tmp_path / "file" / "run"))
    assert writable_workdir(str(tmp_path / "new" / "run")) == str(tmp_path / "new" / "run")
    assert os.listdir(tmp_path / "new" / "run") == []  # the probe leaves nothing behind
