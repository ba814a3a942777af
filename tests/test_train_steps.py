"""The pmapped steps: 4 devices give what 1 device gives on the same global batch (batch norm
included), a non-finite step leaves the state alone, and evaluation leaves padding out."""

import os
import types

import jax
import numpy as np
import pytest
from flax import jax_utils

from jaxvision import configs
from jaxvision.train import resolve
from jaxvision.train.engine import build_engine

TINY = os.path.join(os.path.dirname(__file__), "configs", "tiny.py")
INFO = types.SimpleNamespace(name="shapes", image_shape=(16, 16, 3), num_classes=3, multi_label=False, has_mask=True)
GLOBAL_BATCH, STEPS = 8, 3


def _engine(devices):
    config = resolve(configs.load_config(TINY + ":classification"))
    config.model.dropout = 0.0  # dropout masks depend on the device split; everything else must not
    # SGD keeps updates linear in the gradients; Adam's g / sqrt(v) would turn rounding noise in the
    # (zero in exact arithmetic) gradients of the biases before batch norm into full-size steps.
    config.optimizer.update(name="sgd", momentum=0.9, learning_rate=0.1)
    return build_engine(config, INFO, steps_per_epoch=10, devices=devices)


def _batches(num_devices):
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        batch = {
            "image": rng.random((GLOBAL_BATCH, 16, 16, 3), np.float32),
            "label": np.eye(3, dtype=np.float32)[rng.integers(0, 3, GLOBAL_BATCH)],
            "valid": np.ones((GLOBAL_BATCH,), np.float32),
        }
        yield {k: v.reshape((num_devices, GLOBAL_BATCH // num_devices) + v.shape[1:]) for k, v in batch.items()}


def _first(tree):
    """Device 0's copy (flax's unreplicate mishandles a one-device subset of several)."""
    return jax.tree.map(lambda x: np.asarray(x)[0], tree)


def _train(devices):
    engine = _engine(devices)
    state = jax_utils.replicate(engine.initial_state, devices, axis_name="batch")
    for batch in _batches(len(devices)):
        state, metrics, _, _ = engine.train_step(
            state, batch, np.zeros(len(devices), np.float32), np.ones(len(devices), np.float32)
        )
    return engine, _first(state), _first(metrics)


@pytest.fixture(scope="module")
def four():
    assert jax.local_device_count() == 4, "run with XLA_FLAGS=--xla_force_host_platform_device_count=4"
    return _train(jax.local_devices())


def test_four_devices_equal_one_device_on_the_same_global_batch(four):
    _, state4, metrics4 = four
    _, state1, metrics1 = _train(jax.local_devices()[:1])
    assert int(state4.step) == int(state1.step) == STEPS
    # Batch norm statistics are those of the global batch on both, so after 3 SGD steps the
    # results agree up to float32 rounding of sums taken in another order (per-device partial
    # sums, then an all-reduce): measured at most 2e-7 absolute on the parameters, 1e-8 on the
    # batch statistics. 1e-5 absolute (+ 1e-4 relative) is far below a real difference: the same
    # run with unsynchronised batch norm moves the parameters by 0.1.
    for name in ("params", "batch_stats", "opt_state"):
        for a, b in zip(jax.tree.leaves(getattr(state4, name)), jax.tree.leaves(getattr(state1, name))):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
    assert jax.tree.leaves(state4.batch_stats), "the tiny DeepCNN must have batch norm for this test"
    # Summed metrics count every example of the global batch once on both.
    assert float(metrics4["loss"].count) == float(metrics1["loss"].count) == GLOBAL_BATCH
    np.testing.assert_allclose(metrics4["loss"].total, metrics1["loss"].total, rtol=1e-5)


def test_a_non_finite_step_leaves_the_state_unchanged(four):
    engine, state, _ = four
    batch = next(_batches(4))
    batch["image"][1, 0, 0, 0, 0] = np.nan
    replicated = jax_utils.replicate(state, axis_name="batch")
    new, metrics, _, go = engine.train_step(replicated, batch, np.zeros(4, np.float32), np.ones(4, np.float32))
    new, metrics = _first(new), _first(metrics)
    assert not np.isfinite(metrics["loss"].total)
    assert jax.tree.all(jax.tree.map(np.array_equal, new, state))  # step counter included
    assert float(metrics["finite"].total) == 0 and not np.any(np.asarray(go))


def test_a_refused_step_refuses_the_steps_after_it(four):
    # The loop reads a step's metrics a few steps late; by then the state must still be the one
    # before the first refused step, however good the batches after it.
    engine, state, _ = four
    good = next(_batches(4))
    replicated = jax_utils.replicate(state, axis_name="batch")
    stop = np.zeros(4, np.float32)
    moved, metrics, _, go = engine.train_step(replicated, good, stop, np.ones(4, np.float32))
    assert float(_first(metrics)["finite"].total) == 1 and np.all(np.asarray(go) == 1)
    assert int(_first(moved).step) == int(state.step) + 1
    replicated = jax_utils.replicate(state, axis_name="batch")
    kept, metrics, _, go = engine.train_step(replicated, good, stop, np.zeros(4, np.float32))
    assert float(_first(metrics)["finite"].total) == 0 and not np.any(np.asarray(go))
    assert jax.tree.all(jax.tree.map(np.array_equal, _first(kept), state))


def test_evaluation_leaves_padding_out(four):
    engine, state, _ = four
    batch = next(_batches(4))
    replicated = jax_utils.replicate(state, axis_name="batch")
    full = jax.device_get(engine.eval_step(replicated, batch))
    padded = {k: v.copy() for k, v in batch.items()}
    padded["valid"][:, 1] = 0.0  # the second example of each device becomes padding...
    padded["image"][:, 1] = 0.0  # ...whose content must not matter
    padded = jax.device_get(engine.eval_step(replicated, padded))
    for name in ("loss", "accuracy"):
        per_example = full[name]  # each device's sum over its 2 examples
        assert float(padded[name].count.sum()) == 4.0
        # Only the first example of each device counts: its value is the full sum minus the second's.
        second = jax.device_get(engine.eval_step(replicated, {k: v[:, 1:] for k, v in batch.items()}))[name]
        np.testing.assert_allclose(
            padded[name].total.sum(), per_example.total.sum() - second.total.sum(), rtol=1e-5, atol=1e-6
        )


def test_the_nan_guard_is_one_branch_not_a_select_of_every_value():
    """An elementwise select over the whole state made XLA:CPU compile InceptionV3's step at
    299x299 for over 14 minutes (benchmarks/RESULTS.md, "Compile time"); one branch takes 35 s."""
    from jaxvision.metrics import Ratio
    from jaxvision.train import steps

    state = _engine(jax.local_devices()[:1]).initial_state
    sums = {"loss": Ratio(np.float32(1), np.float32(1)), "grad_norm": Ratio(np.float32(1), np.float32(1))}
    guarded = jax.make_jaxpr(lambda new, old: steps._taken_if_finite(new, old, dict(sums), None, None))(state, state)
    used = {eqn.primitive.name for eqn in guarded.jaxpr.eqns}
    assert "cond" in used and "select_n" not in used
