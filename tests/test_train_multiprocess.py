"""Two processes on 127.0.0.1 with 2 CPU devices each (jax.distributed, gloo collectives) train
like one process with 4 devices on the same global batches; when one dies, the other stops
with an error within a bounded time instead of hanging in a collective."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from flax import jax_utils

from jaxvision import data
from jaxvision.train.checkpoint import Checkpoints
from jaxvision.train.engine import build_engine
from test_train_fit import ROOT, TINY, shared_cache, tiny_config

EPOCHS = 2
PEER_TIMEOUT_S = 5
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_multiprocess")
    return {"root": root, "data_dir": str(root / "tfds"), "cache_env": shared_cache(root)}


def _overrides(env, epochs):
    # SGD: updates linear in the gradients. Adam would turn the rounding noise in gradients that
    # are zero in exact arithmetic (conv biases before batch norm) into full learning-rate steps.
    # 32 training images: 4 steps an epoch, few enough that rounding differences stay at the
    # rounding level (momentum SGD amplifies them over many steps).
    return [
        f"--config.data.data_dir={env['data_dir']}",
        f"--config.num_epochs={epochs}",
        "--config.log_every_steps=1",
        "--config.data.shapes.num_train=32",
        f"--config.peer_timeout_s={PEER_TIMEOUT_S}",
        "--config.optimizer.name=sgd",
        "--config.optimizer.momentum=0.9",
        "--config.optimizer.learning_rate=0.1",
    ]


def _config(env, epochs=EPOCHS):
    return tiny_config("classification", _overrides(env, epochs))


@contextlib.contextmanager
def _pair(env, workdir, epochs):
    """Both processes of a 2-process run; whatever still runs at the end is killed."""
    processes = _start_pair(env, workdir, epochs)
    try:
        yield processes
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def _start_pair(env, workdir, epochs, ids=(0, 1)):
    port = _free_port()
    processes = []
    for process_id in ids:
        process_env = dict(
            os.environ,
            XLA_FLAGS="--xla_force_host_platform_device_count=2",
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(process_id),
            **env["cache_env"],
        )
        command = [
            sys.executable,
            "-m",
            "jaxvision.main",
            "--config",
            f"{TINY}:classification",
            "--workdir",
            workdir,
            *_overrides(env, epochs),
        ]
        # Output goes to files: a pipe nobody reads could fill up and stall a long run.
        with open(f"{workdir}-{process_id}.log", "w") as out:
            processes.append(subprocess.Popen(command, cwd=ROOT, env=process_env, stdout=out, stderr=subprocess.STDOUT))
    return processes


def _output(workdir, process_id):
    with open(f"{workdir}-{process_id}.log") as f:
        return f.read()[-3000:]


def _one_process_reference(config):
    """4 local devices fed the global batches the two processes read: process p's share of each
    batch goes to devices 2p and 2p + 1, as the pmap axis orders them in the 2-process run."""
    devices = jax.local_devices()
    shares = [
        data.make_pipelines(config, process_index=p, process_count=2, devices=devices[2 * p : 2 * p + 2])
        for p in range(2)
    ]
    engine = build_engine(config, shares[0].info, shares[0].steps_per_epoch)
    state = jax_utils.replicate(engine.initial_state, axis_name="batch")
    for epoch in range(config.num_epochs):
        for halves in zip(*(share.train(epoch) for share in shares)):
            batch = {k: np.concatenate([np.asarray(h[k]) for h in halves]) for k in halves[0]}
            state, _, _, _ = engine.train_step(state, batch, np.zeros(4, np.float32), np.ones(4, np.float32))
    return jax.device_get(jax_utils.unreplicate(state))


def test_two_processes_train_like_one_process_with_four_devices(env):
    config = _config(env)
    reference = _one_process_reference(config)  # also prepares the dataset before the pair starts
    workdir = str(env["root"] / "pair")
    with _pair(env, workdir, EPOCHS) as processes:
        for p in processes:
            p.wait(timeout=TIMEOUT_S)
    for process_id, p in enumerate(processes):
        assert p.returncode == 0, _output(workdir, process_id)
    checkpoints = Checkpoints(workdir, read_only=True)
    state, _ = checkpoints.restore(reference)
    checkpoints.close()
    assert int(state.step) == int(reference.step) > 0
    # Same global batches, same device order, same dropout masks (drawn per global device index):
    # only the all-reduce differs (gloo between processes vs. in-process), which may add float32
    # sums in another order: measured at most 5e-7 on the parameters and 6e-8 on the batch
    # statistics after 8 steps; 1e-5 leaves room, and real differences (another batch, another
    # mask) are at the 1e-2 level.
    for name in ("params", "batch_stats"):
        for a, b in zip(jax.tree.leaves(getattr(state, name)), jax.tree.leaves(getattr(reference, name))):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
    # Only process 0 logs: each step appears once.
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f if '"train_step"' in line]
    assert steps == list(range(1, int(reference.step) + 1))


@pytest.mark.parametrize("victim_id", [1, 0], ids=["a worker dies", "the coordinator dies"])
def test_when_a_peer_dies_the_other_process_stops_with_one_sentence(env, victim_id):
    data.make_pipelines(_config(env))  # prepared here, not by two processes at once
    workdir = str(env["root"] / f"killed{victim_id}")
    with _pair(env, workdir, epochs=1000) as processes:
        victim, survivor = processes[victim_id], processes[1 - victim_id]
        deadline = time.time() + TIMEOUT_S
        log = os.path.join(workdir, "metrics.jsonl")
        while not (os.path.exists(log) and os.path.getsize(log) > 0):  # both are training
            if time.time() > deadline or survivor.poll() is not None or victim.poll() is not None:
                pytest.fail("the pair did not start training:\n" + _output(workdir, 0))
            time.sleep(0.05)
        victim.kill()  # the watcher: its training process dies with it
        victim.wait(timeout=TIMEOUT_S)
        killed = time.time()
        try:
            survivor.wait(timeout=PEER_TIMEOUT_S + 60)
        except subprocess.TimeoutExpired:
            pytest.fail("the surviving process hung after its peer died")
    # Bounded: a collective with the dead peer fails when its connection breaks; failing that,
    # the coordination service (or its loss) ends the survivor, whose watcher says so.
    out = _output(workdir, 1 - victim_id)
    assert survivor.returncode == 1, out
    assert "Check failure stack trace" not in out and "Traceback" not in out, out
    sentence = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(sentence) == 1 and "start every process again" in sentence[0], out
    if victim_id == 0:  # whichever notices first: the coordination service, or a collective's broken link
        assert "process 0" in sentence[0] or "a peer has probably died" in sentence[0], out
    assert time.time() - killed < PEER_TIMEOUT_S + 60


def test_a_process_whose_peers_never_start_stops_with_one_sentence(env):
    workdir = str(env["root"] / "alone")
    process = _start_pair(env, workdir, epochs=1, ids=(0,))[0]
    process.wait(timeout=TIMEOUT_S)
    out = _output(workdir, 0)
    assert process.returncode == 1 and "Check failure stack trace" not in out, out
    assert "error: process 0 of 2 stops: not all 2 processes connected to the coordinator in time" in out, out
