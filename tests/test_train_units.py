"""Unit tests of the engine's small parts: config, command line, optimizers, tasks, early
stopping, signals, distributed set-up and logs (checkpoints: test_checkpoints.py). No dataset, no
training run."""

import json
import os
import signal

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvision import configs, interrupts, losses, main
from jaxvision.train import default_config, resolve
from jaxvision.train.distributed import initialize_from_environment
from jaxvision.train.logs import RunLog
from jaxvision.train.monitor import Monitor
from jaxvision.train.optim import make_optimizer, make_schedule
from jaxvision.train.signals import StopRequests
from jaxvision.train.tasks import make_task

TINY = os.path.join(os.path.dirname(__file__), "configs", "tiny.py")


# --- config and command line ------------------------------------------------------------------


def test_resolve_fills_defaults_and_rejects_misspelt_or_mistyped_keys():
    config = ml_collections.ConfigDict({"optimizer": {"name": "sgd"}, "model": {"name": "deep_cnn", "dropout": 0.1}})
    resolved = resolve(config)
    assert resolved.optimizer.name == "sgd"
    assert resolved.optimizer.learning_rate == default_config().optimizer.learning_rate
    assert resolved.model.dropout == 0.1  # model keys are the model's arguments, checked by building it
    with pytest.raises(ValueError, match=r"Model 'deep_cnn' does not take the argument 'anything'"):
        resolve(ml_collections.ConfigDict({"model": {"name": "deep_cnn", "anything": 1}}))
    with pytest.raises(ValueError, match=r"config\.optimizer\.learnig_rate"):
        resolve(ml_collections.ConfigDict({"optimizer": {"learnig_rate": 0.1}}))
    with pytest.raises(ValueError, match=r"config\.optimizer\.learning_rate is 'fast'"):
        resolve(ml_collections.ConfigDict({"optimizer": {"learning_rate": "fast"}}))
    with pytest.raises(ValueError, match="'min' or 'max'"):
        resolve(ml_collections.ConfigDict({"monitor": {"mode": "up"}}))


def test_overrides_are_applied_once_and_checked_with_the_rest():
    given = configs.load_config(TINY)
    config = resolve(given, [("checkpoint.every_steps", "5"), ("data.image_size", "12")])
    assert config.checkpoint.every_steps == 5 and config.data.image_size == 12
    assert resolve(config) is config  # resolved once, then passed down as it is
    with pytest.raises(ValueError, match="learning_rate is 0.0: it must be a positive number"):
        resolve(given, [("optimizer.learning_rate", "0")])
    with pytest.raises(ValueError, match="image_size must be a positive number"):
        resolve(given, [("data.image_size", "0")])


def test_overrides_are_read_as_the_fields_type():
    config = resolve(configs.load_config(TINY + ":segmentation"))
    for key, text in [
        ("num_epochs", "5"),
        ("optimizer.learning_rate", "1e-2"),
        ("data.random_flip", "false"),
        ("optimizer.frozen", "('encoder_conv_0',)"),
        ("monitor.metric", "validation/iou"),
        ("model.skip_connections", "True"),
    ]:
        configs.apply_override(config, key, text)
    assert config.num_epochs == 5 and config.optimizer.learning_rate == 1e-2 and config.data.random_flip is False
    assert config.optimizer.frozen == ("encoder_conv_0",) and config.monitor.metric == "validation/iou"
    assert config.model.skip_connections is True  # a new model keyword is allowed
    with pytest.raises(configs.UsageError, match="did you mean 'num_epochs'"):
        configs.apply_override(config, "nmu_epochs", "3")
    with pytest.raises(configs.UsageError, match="cannot be read as a int"):
        configs.apply_override(config, "num_epochs", "many")
    with pytest.raises(configs.UsageError, match="Unknown config key config.optimizer.speed"):
        configs.apply_override(config, "optimizer.speed", "3")


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([f"--config={TINY}:bogus"], "Unknown variant 'bogus'"),
        ([f"--config={TINY}", "--config.optimizer.nmae=sgd"], "did you mean 'name'"),
        (["--config=missing.py"], "does not exist"),
        ([f"--config={TINY}", "--config.task=detection"], "Unknown config.task 'detection'"),
        ([f"--config={TINY}", "--config.batch_size=0"], "config.batch_size is 0: it must be at least 1"),
        ([f"--config={TINY}", "--config.batch_size=-8"], "config.batch_size is -8: it must be at least 1"),
        ([f"--config={TINY}", "--config.eval_batch_size=0"], "config.eval_batch_size is 0: it must be at least 1"),
        ([f"--config={TINY}", "--config.num_epochs=0"], "config.num_epochs is 0: it must be at least 1"),
        ([f"--config={TINY}", "--config.num_epochs=-1"], "config.num_epochs is -1: it must be at least 1"),
        ([f"--config={TINY}", "--config.checkpoint.every_epochs=0"], "every_epochs is 0: it must be at least 1"),
    ],
)
def test_command_line_mistakes_are_one_sentence(argv, expected, capsys, tmp_path):
    assert main.main(argv + [f"--workdir={tmp_path}", "--config.data.data_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert expected in line and "Traceback" not in err, err


def test_an_experiment_file_with_a_syntax_error_names_the_file_and_line(capsys, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import ml_collections\n\ndef get_config(:\n    pass\n")
    assert main.main([f"--config={broken}", f"--workdir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert f"error: {broken}, line 3: invalid syntax; fix the experiment file and run again." in err, err


# --- optimizers -------------------------------------------------------------------------------


class _Model:
    """Stands in for a flax module in `trainable_mask`: no frozen backbone."""


PARAMS = {"conv": {"kernel": jnp.ones((3, 3)), "bias": jnp.zeros(3)}, "head": {"kernel": jnp.ones((3, 2))}}


@pytest.mark.parametrize("name", ["adam", "adamax", "rmsprop", "sgd"])
def test_every_optimizer_descends(name):
    opt = default_config().optimizer
    opt.name, opt.learning_rate, opt.momentum = name, 0.1, 0.9 if name == "sgd" else 0.0
    tx, _ = make_optimizer(opt, _Model(), PARAMS, steps_per_epoch=10, num_epochs=1)
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    # Every optimizer's first step moves each weight against a positive gradient.
    assert all(bool(jnp.all(u < 0)) for u in jax.tree.leaves(updates))
    opt.name = "lamb"
    with pytest.raises(ValueError, match="adam, adamax, rmsprop, sgd"):
        make_optimizer(opt, _Model(), PARAMS, 10, 1)


def test_schedules():
    opt = default_config().optimizer
    opt.learning_rate = 1.0
    opt.schedule = "cosine"
    s = make_schedule(opt, steps_per_epoch=10, num_epochs=2)
    assert float(s(0)) == 1.0 and float(s(20)) == pytest.approx(0.0, abs=1e-6)
    opt.warmup_epochs = 0.5
    s = make_schedule(opt, 10, 2)
    assert float(s(0)) == 0.0 and float(s(5)) == pytest.approx(1.0) and float(s(20)) == pytest.approx(0.0, abs=1e-6)
    opt.warmup_epochs, opt.schedule, opt.decay_rate = 0.0, "exponential", 0.5
    s = make_schedule(opt, 10, 3)
    assert [float(s(i)) for i in (0, 9, 10, 25)] == pytest.approx([1.0, 1.0, 0.5, 0.25])
    opt.schedule, opt.boundaries, opt.decay_rate = "piecewise", (1, 2), 0.1
    s = make_schedule(opt, 10, 3)
    assert [float(s(i)) for i in (9, 10, 19, 20)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
    opt.schedule = "triangle"
    with pytest.raises(ValueError, match="schedule"):
        make_schedule(opt, 10, 3)


def test_frozen_parameters_do_not_move_even_with_momentum():
    opt = default_config().optimizer
    opt.name, opt.momentum, opt.learning_rate, opt.frozen = "sgd", 0.9, 0.1, ("conv",)
    tx, _ = make_optimizer(opt, _Model(), PARAMS, 10, 1)
    state, params = tx.init(PARAMS), PARAMS
    for _ in range(2):
        updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
        params = optax.apply_updates(params, updates)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, params["conv"], PARAMS["conv"]))
    assert not jnp.array_equal(params["head"]["kernel"], PARAMS["head"]["kernel"])
    opt.frozen = ("con",)  # a prefix of a name, not of a path: matches nothing
    with pytest.raises(ValueError, match="matches no parameter"):
        make_optimizer(opt, _Model(), PARAMS, 10, 1)


class _WithHead:
    head_names = ("head",)


def test_the_backbone_learns_at_a_scaled_rate_and_clipping_counts_trained_leaves_only():
    opt = default_config().optimizer
    opt.name, opt.learning_rate, opt.backbone_lr_scale = "sgd", 0.1, 0.25
    tx, _ = make_optimizer(opt, _WithHead(), PARAMS, 10, 1)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, PARAMS), tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["head"]["kernel"], -0.1)  # SGD: exact multiples of the gradient
    np.testing.assert_allclose(updates["conv"]["kernel"], -0.025)
    with pytest.raises(ValueError, match="backbone_lr_scale needs a model with a head"):
        make_optimizer(opt, _Model(), PARAMS, 10, 1)
    # clip_norm bounds the norm of what is trained: frozen gradients do not shrink the head's step
    opt.backbone_lr_scale, opt.frozen, opt.clip_norm = 1.0, ("conv",), 1.0
    tx, _ = make_optimizer(opt, _WithHead(), PARAMS, 10, 1)
    grads = {
        "conv": {"kernel": jnp.full((3, 3), 100.0), "bias": jnp.zeros(3)},
        "head": {"kernel": jnp.full((3, 2), 0.1)},
    }
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["head"]["kernel"], -0.01, rtol=1e-6)  # norm 0.24 < 1: not clipped
    assert not np.any(updates["conv"]["kernel"])


# --- tasks ------------------------------------------------------------------------------------


def test_tasks_use_the_named_losses_and_leave_padding_out():
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    y = jax.nn.one_hot(jnp.array([0, 1, 2, 0]), 3)
    valid = jnp.array([1.0, 1.0, 1.0, 0.0])
    batch = {"label": y, "valid": valid}
    task = make_task("classification", "binary_cross_entropy")
    # Paper A's loss is the binary cross-entropy of the softmax outputs.
    np.testing.assert_array_equal(task.loss(z, batch), losses.binary_cross_entropy(losses.softmax(z), y))
    accuracy = task.metrics(z, batch)["accuracy"]
    expected = np.sum((np.argmax(z, -1) == np.array([0, 1, 2, 0]))[:3])
    assert float(accuracy.count) == 3 and float(accuracy.total) == expected
    seg = make_task("segmentation", "binary_cross_entropy+dice")
    logits = jnp.asarray(rng.normal(size=(2, 4, 4, 1)), jnp.float32)
    mask = jnp.asarray(rng.random((2, 4, 4, 1)) > 0.5, jnp.float32)
    both = seg.loss(logits, {"mask": mask})
    expected = losses.sigmoid_binary_cross_entropy(logits, mask) + losses.dice_loss(logits, mask)
    np.testing.assert_allclose(both, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="does not fit config.task 'reconstruction'"):
        make_task("reconstruction", "dice")


# --- early stopping ---------------------------------------------------------------------------


def test_monitor_follows_keras_rules():
    m = Monitor("validation/loss", "min", patience=2, min_delta=0.01)
    values = [1.0, 0.995, 0.9, float("nan"), float("-inf"), 0.95]
    flags = [m.update(e, {"validation": {"loss": v}}) for e, v in enumerate(values)]
    assert flags == [True, False, True, False, False, False]  # 0.995 is within min_delta; NaN, inf never improve
    assert m.best == 0.9 and m.best_epoch == 2 and m.should_stop
    restored = Monitor("validation/loss", "min", patience=2)
    restored.load(json.loads(json.dumps(m.counters())))
    assert restored.counters() == m.counters()
    up = Monitor("validation/accuracy", "max")
    assert up.update(0, {"validation": {"accuracy": 0.5}}) and not up.update(1, {"validation": {"accuracy": 0.4}})
    assert not up.should_stop  # patience 0: never stops


# --- signals and processes --------------------------------------------------------------------


def test_sigterm_and_sigint_become_requests_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequests() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C does not wait for the loop
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


class _Finalized:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)  # the handler's exception arises where Python must drop it


def test_a_sigterm_dropped_in_a_finalizer_is_quiet_and_still_stops_the_loop(capsys):
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.stop_at_once():
        _Finalized()  # like jax's garbage-collector callback, which a SIGTERM can land in
        assert interrupts.pending == "SIGTERM"
        with StopRequests() as stop:
            assert stop.requested and stop.signal_name == "SIGTERM"  # saves at its first step
    assert "Traceback" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before
    with StopRequests() as stop:
        assert not stop.requested  # a fit after the command, in the same process, starts unasked


def test_distributed_environment_is_all_or_nothing(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    assert initialize_from_environment() is False
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES, JAX_PROCESS_ID is not"):
        initialize_from_environment()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
    monkeypatch.setenv("JAX_PROCESS_ID", "0")
    assert initialize_from_environment() is False  # one process needs no coordinator
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "2")
    with pytest.raises(ValueError, match="outside 0..1"):
        initialize_from_environment()


# --- logs -------------------------------------------------------------------------------------


def test_logs_write_jsonl_and_tensorboard_events_on_process_zero_only(tmp_path):
    import tensorflow as tf

    log = RunLog(str(tmp_path), enabled=True)
    log.save_config(ml_collections.ConfigDict({"seed": 3}))
    log.write(step=5, epoch=0, split="validation", metrics={"loss": 0.25, "accuracy": 0.75})
    log.close()
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 3
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {
        "step": 5,
        "epoch": 0,
        "split": "validation",
        "loss": 0.25,
        "accuracy": 0.75,
    }
    (events,) = (tmp_path / "tensorboard").iterdir()
    scalars = {}
    for record in tf.data.TFRecordDataset(str(events)):
        event = tf.compat.v1.Event.FromString(record.numpy())
        scalars.update({(v.tag, event.step): v.simple_value for v in event.summary.value})
    assert scalars == {("validation/loss", 5): 0.25, ("validation/accuracy", 5): 0.75}

    quiet = tmp_path / "other"
    quiet.mkdir()
    log = RunLog(str(quiet), enabled=False)
    log.save_config(ml_collections.ConfigDict({"seed": 3}))
    log.write(1, 0, "train", {"loss": 1.0})
    log.close()
    assert list(quiet.iterdir()) == []


def test_dispatches_group_steps_without_crossing_a_checkpoint_and_regroup_alike_after_a_resume():
    from jaxvision.train.loop import _dispatches

    def groups(start, first_step, most, every, steps=10):
        return [(i, len(g)) for i, g in _dispatches(iter(range(start, steps)), start, first_step, most, every)]

    assert groups(0, 0, 1, 0) == [(i, 1) for i in range(10)]
    assert groups(0, 0, 4, 0) == [(0, 4), (4, 4), (8, 2)]  # never across the epoch's end
    # epoch 2 of 10-step epochs (global steps 21-30), a checkpoint every 5 steps: 21-24 | 25 | 26-28 | 29-30
    assert groups(0, 20, 4, 5) == [(0, 4), (4, 1), (5, 3), (8, 2)]
    # resumed from the checkpoint after global step 25: the same groups as the uninterrupted epoch from there
    assert groups(5, 20, 4, 5) == [(5, 3), (8, 2)]
