"""A suite's runs in single-core processes side by side (jaxvision/research/scheduled.py): when
they are used, a failed run, a stop and its resume, and a dataset prepared once by runs asking
for it at the same time. That the numbers equal those of one run at a time is checked on the
quickstart in test_experiment_runs.py."""

import json
import os
import signal
import threading
import time

import ml_collections
import pytest

from jaxvision.configs import load_config
from jaxvision.data.sources import prepared_source
from jaxvision.research import scheduled, suite
from test_experiment_runs import ROOT, tiny


@pytest.fixture
def tfds_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path / "cache"))
    return str(tmp_path / "tfds")


def _suite(processes=None, **runs) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict(dict(suite=dict(title="t", order=tuple(runs), notes=())))
    if processes is not None:
        config.suite.processes = processes
    config.runs = ml_collections.ConfigDict(runs)
    return config


def test_processes_are_asked_for_and_only_used_on_cpus(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert scheduled.processes(_suite()) == 0  # not asked: one after the other, in this process
    assert scheduled.processes(_suite(processes=3)) == 3
    assert scheduled.processes(_suite(processes=0)) == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="config.suite.processes is -1"):
        scheduled.processes(_suite(processes=-1))
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")  # one process of a multi-host job
    assert scheduled.processes(_suite(processes=0)) == 0


def test_a_failed_run_is_named_with_its_sentence_and_its_log(tfds_dir, tmp_path):
    broken = ml_collections.ConfigDict(dict(kind="prior", task="nonsense", report=dict(row="broken")))
    found = {"broken": broken}
    with pytest.raises(RuntimeError) as failed:
        scheduled.run(found, str(tmp_path / "suite"), 2, print)
    message = str(failed.value)
    assert message.startswith("Run broken of the suite failed (error: A baseline run has task 'nonsense'")
    assert os.path.join(str(tmp_path), "suite", "broken", scheduled.LOG) in message


def _autoencoder(epochs: int) -> ml_collections.ConfigDict:
    run = tiny(load_config(os.path.join(ROOT, "experiments", "quickstart.py")).runs.ae_2048)
    run.num_epochs = epochs
    return run


def test_sigterm_stops_the_runs_saved_and_the_suite_resumes_them(tfds_dir, tmp_path):
    workdir = str(tmp_path / "suite")
    config = _suite(processes=1, ae=_autoencoder(60))
    metrics = os.path.join(workdir, "ae", "metrics.jsonl")

    def stop_after_the_first_epoch():
        while not (os.path.isfile(metrics) and '"split": "train"' in open(metrics).read()):
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_after_the_first_epoch, daemon=True).start()
    message, interrupted = suite.run(config, workdir)
    assert interrupted and message.startswith("Stopped by SIGTERM: ae saved their checkpoints.")
    epochs = open(metrics).read().count('"split": "train"')
    assert 1 <= epochs < 60  # stopped before its end
    message, interrupted = suite.run(config, workdir)
    assert not interrupted and "1 runs finished" in message
    assert open(metrics).read().count('"split": "train"') == 60  # resumed, not started again
    assert open(os.path.join(workdir, "ae", scheduled.LOG)).read().count("started on core") == 2


def test_a_dataset_asked_for_by_two_at_once_is_prepared_once(tfds_dir):
    data = _autoencoder(1).data
    sources, errors = [], []

    def prepare():
        try:
            sources.append(prepared_source(data))
        except Exception as error:  # the race this guards against raised FileExistsError in tfds
            errors.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert [s.builder.info.splits["train"].num_examples for s in sources] == [4, 4]


def test_a_run_stopped_by_a_signal_of_its_own_stops_the_suite(tfds_dir, tmp_path):
    # The frozen encoder waits for ae_8192; had the suite not stopped with it, it would wait forever.
    workdir = str(tmp_path / "suite")
    config = load_config(os.path.join(ROOT, "experiments", "quickstart.py"))
    config.suite.order = ("ae_8192", "frozen_encoder")
    for name in config.suite.order:
        config.runs[name] = tiny(config.runs[name])
    config.runs.ae_8192.num_epochs = 60
    sub = os.path.join(workdir, "ae_8192")

    def stop_the_run_alone():
        metrics = os.path.join(sub, "metrics.jsonl")
        while not (os.path.isfile(metrics) and '"split": "train"' in open(metrics).read()):
            time.sleep(0.1)
        with open(os.path.join(sub, "run.lock")) as f:
            os.kill(json.load(f)["pid"], signal.SIGTERM)

    threading.Thread(target=stop_the_run_alone, daemon=True).start()
    message = scheduled.run(suite.resolved_runs(config, workdir), workdir, 2, print)
    assert message.startswith("Stopped by SIGTERM: ae_8192 saved their checkpoints.")
    assert not os.path.exists(os.path.join(workdir, "frozen_encoder"))  # never started
