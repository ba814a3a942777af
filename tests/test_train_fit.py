"""fit end to end on the embedded 'shapes' dataset (16x16, tiny models): every task trains and
logs, early stopping and the NaN stop work, and a real subprocess killed with SIGKILL (or
stopped with SIGTERM) resumes to exactly the parameters of an uninterrupted run."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxvision import configs, main, train
from jaxvision.train.checkpoint import Checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "configs", "tiny.py")
EPOCHS, STEPS_PER_EPOCH = 2, 12  # 96 training images in batches of 8
LAST_STEP = EPOCHS * STEPS_PER_EPOCH
SUBPROCESS_TIMEOUT_S = 300


def shared_cache(root) -> dict[str, str]:
    """A persistent compilation cache under `root` for this process, and the environment with which
    subprocesses reuse what it compiled (tests/test_train_multiprocess.py's too)."""
    cache = str(root / "jax_cache")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    return {"JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def tiny_config(variant, overrides, **changes):
    """tests/configs/tiny.py's `variant`, resolved, with command-line `overrides` ('--config.KEY=VALUE')
    and `changes` (KEY=value) applied as the command line would."""
    given = [tuple(text[len("--config.") :].split("=", 1)) for text in overrides]
    return train.resolve(configs.load_config(f"{TINY}:{variant}"), given + [(k, str(v)) for k, v in changes.items()])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A shared data dir and compilation cache: subprocesses reuse what this process compiled."""
    root = tmp_path_factory.mktemp("train_fit")
    return {"root": root, "data_dir": str(root / "tfds"), "process_env": dict(os.environ, **shared_cache(root))}


def _overrides(env, variant):
    """Command-line overrides of the tiny config used by every run of this module."""
    return [
        f"--config.data.data_dir={env['data_dir']}",
        f"--config.num_epochs={EPOCHS}",
        "--config.log_every_steps=1",
        "--config.checkpoint.every_steps=2" if variant == "segmentation" else "--config.checkpoint.every_steps=0",
    ]


def _config(env, variant, **changes):
    return tiny_config(variant, _overrides(env, variant), **changes)


@pytest.fixture(scope="module")
def runs(env):
    """fit of each task, run once when first asked for."""
    done = {}

    def run(variant):
        if variant not in done:
            workdir = str(env["root"] / f"run-{variant}")
            done[variant] = (workdir, train.fit(_config(env, variant), workdir))
        return done[variant]

    return run


def _lines(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _steps(directory):
    return sorted(int(d) for d in os.listdir(directory) if d.isdigit()) if os.path.isdir(directory) else []


RANGED = ("accuracy", "binary_accuracy", "exact_match", "label_accuracy", "dice", "iou", "pixel_accuracy")


@pytest.mark.parametrize("variant", ["classification", "multilabel", "reconstruction", "segmentation"])
def test_every_task_trains_logs_and_checkpoints(runs, variant):
    workdir, result = runs(variant)
    assert result.status == "finished" and int(result.state.step) == LAST_STEP
    lines = _lines(workdir)
    train_loss = [r["loss"] for r in lines if r["split"] == "train"]
    assert len(train_loss) == EPOCHS and train_loss[-1] < train_loss[0], train_loss
    assert [r["step"] for r in lines if r["split"] == "train_step"] == list(range(1, LAST_STEP + 1))
    assert len([r for r in lines if r["split"] == "validation"]) == EPOCHS
    assert [r["split"] for r in lines].count("test") == 1
    for split in ("validation", "test"):
        for name, value in result.results[split].items():
            assert np.isfinite(value), (split, name)
            if name.split("/")[0] in RANGED:
                assert 0.0 <= value <= 1.0, (split, name, value)
    assert result.results["test"]["loss"] >= 0.0
    assert _steps(os.path.join(workdir, "checkpoints"))[-1] == LAST_STEP
    assert len(_steps(os.path.join(workdir, "checkpoints"))) == 2  # checkpoint.keep
    assert len(_steps(os.path.join(workdir, "best"))) == 1
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["task"] == variant
    with open(os.path.join(workdir, "environment.json")) as f:
        environment = json.load(f)
    assert environment["devices"] == jax.device_count() == 4 and environment["jax"] == jax.__version__
    # The CPU that decided the float32 rounding: its model, vector width, caches and cores.
    assert environment["host_cpu"] and (not sys.platform.startswith("linux") or " core" in environment["host_cpu"])
    assert "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution" in environment["XLA_FLAGS"].split()
    assert environment["onednn_convolutions"] is False  # JAXVISION_ONEDNN is not set in the tests


def test_evaluate_mode_reproduces_the_final_test_metrics(env, runs):
    workdir, result = runs("classification")
    # The final test evaluation used the best checkpoint: evaluating it again gives the same sums.
    again = train.evaluate(_config(env, "classification"), workdir, split="test", which="best")
    assert again == result.results["test"]
    with open(os.path.join(workdir, "evaluation-test-best.json")) as f:
        assert json.load(f)["accuracy"] == again["accuracy"]
    assert _steps(os.path.join(workdir, "checkpoints"))[-1] == LAST_STEP  # evaluation changed nothing


def test_early_stopping_keeps_the_best_and_does_not_train_on(env, runs):
    runs("classification")  # compiled once, shared through the cache
    # min_delta so large that no epoch after the first improves: with patience 1, training stops
    # after epoch 2 and the best checkpoint is epoch 1's.
    config = _config(
        env,
        "classification",
        **{
            "num_epochs": 5,
            "monitor.metric": "validation/loss",
            "early_stopping.patience": 1,
            "early_stopping.min_delta": 1e9,
        },
    )
    workdir = str(env["root"] / "early")
    result = train.fit(config, workdir)
    assert result.status == "early_stopped" and int(result.state.step) == 2 * STEPS_PER_EPOCH
    assert _steps(os.path.join(workdir, "best")) == [STEPS_PER_EPOCH]
    again = train.fit(config, workdir)  # the stop is remembered in the checkpoint
    assert again.status == "early_stopped" and int(again.state.step) == 2 * STEPS_PER_EPOCH


def _finite(state) -> bool:
    return all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state) if np.issubdtype(leaf.dtype, np.floating))


def test_a_nan_mid_epoch_keeps_the_state_before_and_the_run_resumes_to_the_end(env, monkeypatch):
    # A NaN pixel in one batch of epoch 2, between two mid-epoch checkpoints (every 2 steps).
    from jaxvision import data

    poisoned = STEPS_PER_EPOCH + 4  # the step that reads it
    make_pipelines = data.make_pipelines

    def with_a_nan(config):
        pipelines = make_pipelines(config)

        def train_batches(epoch, start_step=0):
            for i, batch in enumerate(pipelines.train(epoch, start_step), start=start_step):
                if epoch * STEPS_PER_EPOCH + i + 1 == poisoned:
                    batch = dict(batch, image=np.asarray(batch["image"]).copy())
                    batch["image"][0, 0, 0, 0, 0] = np.nan
                yield batch

        return dataclasses.replace(pipelines, train=train_batches)

    config = _config(env, "segmentation", num_epochs=3)
    workdir = str(env["root"] / "nan")
    monkeypatch.setattr(data, "make_pipelines", with_a_nan)
    with pytest.raises(
        train.TrainingDiverged, match=rf"diverged at step {poisoned} \(epoch 2\): the loss is nan"
    ) as error:
        train.fit(config, workdir)
    monkeypatch.setattr(data, "make_pipelines", make_pipelines)
    kept = _steps(os.path.join(workdir, "checkpoints"))
    assert kept[-1] == poisoned - 1 and (poisoned - 1) % 2, kept  # saved at the stop, not a regular save
    assert f"The state before it (step {poisoned - 1}, its update refused) is saved" in str(error.value)
    target = _target(config)
    state, _ = _restore(workdir, target)
    assert int(state.step) == poisoned - 1 and _finite(state) and _finite(_restore(workdir, target, "best")[0])
    # the same command, with a gentler learning rate, continues from there to the end
    result = train.fit(_config(env, "segmentation", num_epochs=3, **{"optimizer.learning_rate": 1e-3}), workdir)
    assert result.status == "finished" and int(result.state.step) == 3 * STEPS_PER_EPOCH and _finite(result.state)


def test_a_blown_up_first_update_never_reaches_a_checkpoint(env):
    # The loss and gradient of the first step are finite; the weights it would make are ~1e9.
    config = _config(env, "segmentation", **{"optimizer.learning_rate": 1e9, "checkpoint.every_steps": 1})
    workdir = str(env["root"] / "blown_up")
    with pytest.raises(
        train.TrainingDiverged,
        match=r"diverged at step 1 \(epoch 1\): its update would have multiplied "
        r"the weights' norm by .*. The state before it \(step 0",
    ):
        train.fit(config, workdir)
    assert _steps(os.path.join(workdir, "checkpoints")) == [0] and _steps(os.path.join(workdir, "best")) == []
    state, _ = _restore(workdir, _target(config))
    assert _finite(state)


# --- real interruptions, in subprocesses -------------------------------------------------------


def _start(env, workdir, variant="segmentation"):
    command = [
        sys.executable,
        "-m",
        "jaxvision.main",
        "--config",
        f"{TINY}:{variant}",
        "--workdir",
        workdir,
        *_overrides(env, variant),
    ]
    return subprocess.Popen(
        command, cwd=ROOT, env=env["process_env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for_checkpoint(process, workdir, at_least):
    deadline = time.time() + SUBPROCESS_TIMEOUT_S
    while time.time() < deadline and process.poll() is None:
        steps = _steps(os.path.join(workdir, "checkpoints"))
        if steps and steps[-1] >= at_least:
            return
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no checkpoint at step >= {at_least} appeared:\n{process.communicate()[0][-3000:]}")


def _restore(workdir, like, which="latest"):
    checkpoints = Checkpoints(workdir, read_only=True)
    try:
        return checkpoints.restore(like, which)
    finally:
        checkpoints.close()


def _target(config):
    """The run's step 0, as a template to restore into."""
    from jaxvision import data
    from jaxvision.train.engine import build_engine

    pipelines = data.make_pipelines(config)
    return build_engine(config, pipelines.info, pipelines.steps_per_epoch).initial_state


def test_sigkill_mid_run_then_resume_ends_exactly_like_an_uninterrupted_run(env, runs):
    _, reference = runs("segmentation")  # in this process, uninterrupted; also fills the cache
    workdir = str(env["root"] / "killed")
    process = _start(env, workdir)
    _wait_for_checkpoint(process, workdir, at_least=4)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    killed_at = _steps(os.path.join(workdir, "checkpoints"))[-1]
    assert 4 <= killed_at < LAST_STEP, killed_at

    resumed = _start(env, workdir)
    out = resumed.communicate(timeout=SUBPROCESS_TIMEOUT_S)[0]
    assert resumed.returncode == 0, out[-3000:]
    assert f"Resuming from the checkpoint at step {killed_at}" in out
    final, _ = _restore(workdir, reference.state)
    assert int(final.step) == LAST_STEP
    # Bit-exact: same data order, same dropout masks, same optimizer state, same program.
    for name in ("params", "batch_stats", "opt_state", "rng"):
        same = jax.tree.map(np.array_equal, getattr(final, name), getattr(reference.state, name))
        assert jax.tree.all(same), name


def test_sigterm_saves_a_checkpoint_and_exits_with_the_resume_code(env, runs):
    runs("segmentation")
    workdir = str(env["root"] / "terminated")
    process = _start(env, workdir)
    _wait_for_checkpoint(process, workdir, at_least=2)
    process.send_signal(signal.SIGTERM)
    out = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)[0]
    assert process.returncode == main.EXIT_INTERRUPTED == 75, out[-3000:]  # "resume me", not "done"
    stopped = re.findall(r"Stopped by SIGTERM at step (\d+).*Run the same command again", out)
    assert len(stopped) == 1, out[-3000:]  # said once
    stopped = re.search(r"Stopped by SIGTERM at step (\d+)", out)
    step = int(stopped.group(1))
    assert step < LAST_STEP and _steps(os.path.join(workdir, "checkpoints"))[-1] == step
    _, reference = runs("segmentation")
    assert int(_restore(workdir, reference.state)[0].step) == step
