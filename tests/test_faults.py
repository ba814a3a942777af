"""Bad input and faults, as a user meets them through the command line: each case gives its exit
code and one sentence on stderr, no traceback, and leaves every checkpoint as it was.

Families: the config (values that cannot be meant, misspelt model arguments, an experiment file
that raises), the data (resuming on other classes), the workdir (a second run, a stale lock) and
signals (SIGTERM before training starts). The cases stop before anything heavy compiles."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from jaxvision import configs, main, train
from jaxvision.models import build_model
from jaxvision.train import lock
from jaxvision.train.checkpoint import Checkpoints, run_meta
from jaxvision.train.monitor import Monitor
from jaxvision.train.run import open_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "configs", "tiny.py")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("faults") / "tfds")


def _main(capsys, *argv):
    """(exit code, stdout, stderr) of the command line, in this process."""
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_sentence(err: str) -> str:
    """The one line that says what went wrong (progress bars, e.g. a dataset being prepared, aside)."""
    lines = [line for line in err.splitlines() if line.startswith(("error: ", "Stopped by ", "warning: "))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "override, words",
    [
        ("--config.optimizer.learning_rate=0", "learning_rate is 0.0: it must be a positive number"),
        ("--config.optimizer.learning_rate=-0.01", "learning_rate is -0.01: it must be a positive number"),
        ("--config.optimizer.learning_rate=nan", "learning_rate is nan: it must be a positive number"),
        ("--config.feature_views=3", "config.feature_views=3 counts augmented copies of cached features"),
        ("--config.model.num_classes=1", "a softmax over one class is 1 whatever the image"),
        ("--config.model.fliters=3", "does not take the argument 'fliters' (did you mean 'filters'?)"),
        ("--config.model.name=resnet", "Unknown model 'resnet': choose one of"),
        ("--config.optimizer.learnig_rate=1", "did you mean 'learning_rate'?"),
    ],
)
def test_a_value_that_cannot_be_meant_is_one_sentence_before_any_work(override, words, data_dir, tmp_path, capsys):
    workdir = str(tmp_path / "run")
    code, _, err = _main(capsys, "--config", TINY, "--workdir", workdir, f"--config.data.data_dir={data_dir}", override)
    assert code in (1, 2) and words in _one_sentence(err)
    assert not os.path.exists(os.path.join(workdir, "checkpoints"))


def test_the_misspelt_model_argument_alone_is_named():
    with pytest.raises(ValueError) as caught:
        build_model("deep_cnn", dropout=0.1, filters=(4,), fliters=3)
    named, _, accepted = str(caught.value).partition(": it takes ")
    assert "'fliters'" in named and "dropout" not in named and "filters" in accepted


def test_tuple_overrides_take_the_comma_form_the_docs_promise():
    config = train.resolve(configs.load_config(TINY))
    configs.apply_override(config, "data.eval_splits", "test,validation")
    assert config.data.eval_splits == ("test", "validation")
    configs.apply_override(config, "data.eval_splits", '("validation",)')
    assert config.data.eval_splits == ("validation",)


def test_an_experiment_file_that_raises_is_named_with_its_line(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text("import ml_collections\n\n\ndef get_config():\n    return ml_collections.ConfigDict().typo\n")
    code, _, err = _main(capsys, "--config", str(path))
    assert code == 1
    assert f"{path}, line 5: get_config() raised AttributeError" in _one_sentence(err)


def test_a_second_run_on_a_busy_workdir_is_refused_and_names_the_holder(data_dir, tmp_path, capsys):
    workdir = tmp_path / "busy"
    workdir.mkdir()
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": "2026-12-02 01:00:00"}
    (workdir / lock.LOCK).write_text(json.dumps(holder))  # this test's own process: alive
    code, _, err = _main(capsys, "--config", TINY, "--workdir", str(workdir), f"--config.data.data_dir={data_dir}")
    sentence = _one_sentence(err)
    assert code == 1 and f"is in use by another run (pid {os.getpid()}, since 2026-12-02 01:00:00)" in sentence
    assert json.loads((workdir / lock.LOCK).read_text()) == holder  # the holder's lock is left alone
    assert not (workdir / "checkpoints").exists()


def test_a_stale_lock_is_taken_over_with_a_notice_and_released(tmp_path, capsys):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / lock.LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "since": "then"}))
    path = lock.acquire(str(tmp_path))
    assert f"left by pid {gone.pid}, which is no longer running" in capsys.readouterr().err
    assert json.loads(open(path).read())["pid"] == os.getpid()
    assert lock.acquire(str(tmp_path)) == path  # this process again: held twice, released twice
    lock.release(path)
    assert os.path.exists(path)
    lock.release(path)
    assert not os.path.exists(path)


def test_resuming_on_data_with_other_classes_is_refused(data_dir, tmp_path, capsys):
    workdir = str(tmp_path / "other_classes")
    config = train.resolve(configs.load_config(TINY))
    config.data.data_dir = data_dir
    with open_run(config, workdir) as run:
        state = run.engine.initial_state
        counters = Monitor(config.monitor.metric, config.monitor.mode).counters()
        run.checkpoints.save(state, run_meta(counters, class_names=("rose", "tulip", "daisy")))
    saved = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    code, _, err = _main(capsys, "--config", TINY, "--workdir", workdir, f"--config.data.data_dir={data_dir}")
    assert code == 1
    assert "trained on 3 classes (rose, tulip, daisy), but this dataset has 3" in _one_sentence(err)
    assert "resume training on data with the same classes" in err
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == saved
    assert Checkpoints(workdir, read_only=True).step() == 0


def test_a_sigterm_dropped_before_the_end_still_exits_with_the_resume_code(capsys, monkeypatch):
    def finished_after_a_dropped_sigterm(args, overrides):
        class Finalized:
            def __del__(self):
                signal.raise_signal(signal.SIGTERM)

        Finalized()  # its StoppedOutsideAStep is dropped, as in jax's garbage-collector callback
        return 0

    monkeypatch.setattr(main, "_configured_run", finished_after_a_dropped_sigterm)
    code, _, err = _main(capsys, "--config", TINY)
    assert code == main.EXIT_INTERRUPTED
    assert _one_sentence(err).startswith("Stopped by SIGTERM outside a training step")


def test_sigterm_before_training_starts_exits_with_the_resume_code(data_dir, tmp_path):
    workdir = tmp_path / "early"
    process = subprocess.Popen(
        [sys.executable, "-m", "jaxvision.main", "--config", TINY, "--workdir", str(workdir),
         f"--config.data.data_dir={data_dir}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (workdir / lock.LOCK).exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the lock appears as the run opens, before its data and model are built
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == main.EXIT_INTERRUPTED, err[-2000:]
    # Almost always during start-up (data, compile); on a fast start the loop's own handler
    # saves first: the same exit code, its own sentence.
    assert _one_sentence(err).startswith("Stopped by SIGTERM ")
    assert not (workdir / lock.LOCK).exists()


def _steps(workdir) -> list[int]:
    return sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())


def test_a_blow_up_stops_at_the_last_healthy_state_and_the_advice_finishes_the_run(data_dir, tmp_path, capsys):
    """learning_rate=1e9 makes finite weights of 1e9 and diverges later: the step that makes them
    is refused, so the printed advice (a lower learning rate, the same command) finishes the run."""
    workdir = str(tmp_path / "blow_up")
    command = ["--config", TINY, "--workdir", workdir, f"--config.data.data_dir={data_dir}"]
    assert _main(capsys, *command, "--config.num_epochs=1")[0] == 0
    assert _steps(workdir)[-1] == 12  # one epoch of 96 images in batches of 8
    code, _, err = _main(capsys, *command, "--config.num_epochs=2", "--config.optimizer.learning_rate=1e9")
    sentence = _one_sentence(err)
    assert code == 1 and "Training diverged at step 13 (epoch 2): its update would have multiplied" in sentence
    assert "run the same command again to continue from step 12" in sentence and _steps(workdir)[-1] == 12
    code, out, err = _main(capsys, *command, "--config.num_epochs=2", "--config.optimizer.learning_rate=1e-3")
    assert code == 0 and "Resuming from the checkpoint at step 12" in out and "Training finished at step 24" in out
    code, out, err = _main(capsys, *command, "--config.num_epochs=3", "--config.optimizer.clip_norm=1.0")
    assert code == 0 and "Training finished at step 36" in out
    assert "trained with another optimizer setup" in err and "the optimizer's state" in err  # one notice
    assert "Traceback" not in err
    assert _steps(workdir) == [24, 36]  # the two latest kept
    code, out, err = _main(capsys, *command, "--config.num_epochs=3", "--from_step", "24")
    assert code == 0 and "Resuming from the checkpoint at step 24" in out and "Training finished at step 36" in out
    assert "set aside (renamed STEP.set-aside, kept): checkpoints/36" in err
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "36.set-aside")) and _steps(workdir) == [24, 36]
    code, _, err = _main(capsys, *command, "--from_step", "7")
    assert code == 1 and "--from_step 7: " in _one_sentence(err) and "holds no checkpoint of that step" in err


def test_a_damaged_checkpoint_is_one_warning_and_leftovers_of_a_dead_save_go(data_dir, tmp_path, capsys):
    workdir = tmp_path / "damaged"
    command = ["--config", TINY, "--workdir", str(workdir), f"--config.data.data_dir={data_dir}"]
    assert _main(capsys, *command, "--config.num_epochs=1", "--config.checkpoint.every_steps=4")[0] == 0
    assert _steps(str(workdir)) == [8, 12]
    for chunk in (workdir / "checkpoints" / "12" / "state" / "d").iterdir():
        chunk.unlink()  # the arrays of step 12 gone, its metadata left: a save cut short
    leftover = workdir / "checkpoints" / "16.orbax-checkpoint-tmp-1796170000000000"
    leftover.mkdir()  # what a killed save leaves behind
    code, out, err = _main(capsys, *command, "--mode", "evaluate", "--checkpoint", "latest")
    assert code == 0 and "latest checkpoint, step 8" in out
    assert "the checkpoint" in _one_sentence(err) and "is damaged" in err and "Event loop is closed" not in err
    code, out, err = _main(capsys, *command, "--config.num_epochs=2", "--config.checkpoint.every_steps=4")
    assert code == 0 and "Resuming from the checkpoint at step 8" in out and "Training finished at step 24" in out
    assert "moved to" in _one_sentence(err) and not leftover.exists()
    assert (workdir / "checkpoints" / "12.damaged").is_dir()  # moved aside, never deleted


def test_log_lines_a_user_cannot_act_on_are_dropped_and_others_kept(caplog):
    import logging

    import jaxvision  # noqa: F401  (installs the filter)

    absl = logging.getLogger("absl")
    with caplog.at_level(logging.WARNING):
        absl.warning("CheckpointManagerOptions.read_only=True, setting save_interval_steps=0.")
        absl.warning("`FeatureConnector.dtype` is deprecated. Please change your code")
        absl.warning("a checkpoint could not be found")
    assert [r.getMessage() for r in caplog.records] == ["a checkpoint could not be found"]
