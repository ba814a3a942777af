"""What a user sees from the command line on a healthy run: `--mode evaluate` and `--mode predict`
print their result on stdout and nothing on stderr (no orbax, tfds or TensorFlow start-up lines);
training keeps its progress lines; an error is still one sentence on stderr; and a line on stderr
that is not known noise gets through `quiet`'s filter of TensorFlow's import."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from jaxvision import quiet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "configs", "tiny.py")
# As ./launch.sh runs it.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "JAXVISION_TRACEBACK"},
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "KERAS_BACKEND": "jax",
}


def _command(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished one-epoch run of the tiny classifier: (its command line, its training's output)."""
    root = tmp_path_factory.mktemp("quiet")
    argv = ["-m", "jaxvision.main", "--config", f"{TINY}:classification", "--workdir", str(root / "run"),
            f"--config.data.data_dir={root / 'tfds'}", "--config.num_epochs=1"]  # fmt: skip
    done = _command(*argv)
    assert done.returncode == 0, done.stderr[-3000:]
    return argv, done, str(root / "run")


def test_training_keeps_its_progress_lines(run):
    _, done, workdir = run
    assert re.search(r"^epoch 1/1 step 12  train: accuracy ", done.stdout, re.M), done.stdout
    assert done.stdout.splitlines()[-1] == f"Training finished at step 12; results in {workdir}."
    assert "epoch 1/1: " in done.stderr  # the progress bar
    assert not quiet.NATIVE_NOISE.search(done.stderr) and not quiet.NOISE.search(done.stderr)


def test_evaluate_prints_only_its_result(run):
    argv, _, _ = run
    done = _command(*argv, "--mode", "evaluate")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    (line,) = done.stdout.splitlines()
    result = r"test \(best checkpoint, step 12, 12 examples\): accuracy \S+, binary_accuracy \S+, loss \S+"
    assert re.fullmatch(result, line), done.stdout


def test_predict_prints_only_where_it_wrote(run):
    argv, _, workdir = run
    done = _command(*argv, "--mode", "predict")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == f"Predictions written: {os.path.join(workdir, 'predictions-test-best.csv')}\n"


def test_an_error_still_shows(run, tmp_path):
    argv, _, _ = run
    done = _command(*argv[:4], "--workdir", str(tmp_path / "empty"), "--mode", "evaluate")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'empty'} holds no checkpoints: train there first (--mode train), or point "
        "--workdir at a run.",
        "(set JAXVISION_TRACEBACK=1 to see where it came from)",
    ]


SCRIPT = r"""
import os, sys
from jaxvision import quiet
with quiet.native_stderr_without():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1796221563.509670   10819 port.cc:153] oneDNN custom operations are on. You may see\n")
    os.write(2, b"E0000 00:00:1796221563.509670   10819 port.cc:153] oneDNN custom operations are on. But failed.\n")
    os.write(2, b"F0000 00:00:1796221563.509700   10819 loader.cc:1] a library did not load\n")
    print("from python", file=sys.stderr)
print("after", file=sys.stderr)
import tensorflow
print(type(tensorflow.__loader__).__name__, any(type(f).__name__ == "_QuietTensorflowImport" for f in sys.meta_path))
"""


def test_only_tensorflows_known_start_up_lines_are_dropped():
    done = _command("-c", SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "E0000 00:00:1796221563.509670   10819 port.cc:153] oneDNN custom operations are on. But failed.",
        "F0000 00:00:1796221563.509700   10819 loader.cc:1] a library did not load",
        "from python",
        "after",
    ]  # and `import tensorflow` itself said nothing
    assert done.stdout == "SourceFileLoader False\n"  # tensorflow keeps its own loader; the hook is gone
