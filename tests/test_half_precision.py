"""Mixed precision as configuration (`config.half_precision`): bfloat16 activations, float32
everything that accumulates. The bf16 step computes the float32 step's loss and gradient to
within bfloat16's precision, outputs, losses and metric sums stay float32, and a short bf16 run
follows the float32 run's loss curve."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxvision import configs, data, train
from jaxvision.train.engine import build_engine, build_model, compute_dtype

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "tiny.py")


def _config(tmp_path, variant: str, half: bool, **changes):
    overrides = {"data.data_dir": str(tmp_path / "tfds"), "half_precision": half, **changes}
    return train.resolve(configs.load_config(f"{TINY}:{variant}"), [(k, str(v)) for k, v in overrides.items()])


def test_the_default_is_bfloat16_on_accelerators_only():
    assert compute_dtype(None) == (jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16)
    assert compute_dtype(True) == jnp.bfloat16 and compute_dtype(False) == jnp.float32


@pytest.mark.parametrize(
    "name, kwargs, shape",
    [
        ("deep_cnn", dict(filters=(4, 8)), (2, 32, 32, 3)),
        ("segmenter", dict(filters=(4, 8, 8)), (2, 16, 16, 1)),
        ("autoencoder", dict(code_size=8192, filters=(4, 4, 4, 4)), (2, 16, 16, 3)),
        ("encoder_classifier", dict(filters=(4, 8), pools=1), (2, 16, 16, 3)),
        ("inception_v3", dict(num_classes=3), (1, 75, 75, 3)),
    ],
)
def test_parameters_and_outputs_stay_float32_whatever_the_compute_dtype(name, kwargs, shape):
    model = build_model(ml_collections.ConfigDict(dict(name=name, **kwargs)), half_precision=True)
    assert model.dtype == jnp.bfloat16
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False))
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(shape), train=False), variables)
    assert out.dtype == jnp.float32  # so the softmax, the losses and the metrics run in float32


def test_the_bf16_step_gives_the_float32_loss_and_gradient_to_bfloat16_precision(tmp_path):
    grads, losses, metric_dtypes = {}, {}, set()
    for half in (False, True):
        config = _config(tmp_path, "segmentation", half)
        pipelines = data.make_pipelines(config)
        engine = build_engine(config, pipelines.info, pipelines.steps_per_epoch)
        batch = jax.tree.map(lambda x: np.asarray(x)[0], next(pipelines.train(0)))  # one device's shard
        state = engine.initial_state  # the same float32 parameters either way

        def loss_fn(params):
            outputs = engine.model.apply(
                {"params": params, "batch_stats": state.batch_stats}, batch["image"], train=False
            )
            return jnp.mean(engine.task.loss(outputs, batch))

        losses[half], grads[half] = jax.value_and_grad(loss_fn)(state.params)
        metrics = engine.task.metrics(engine.model.apply(state.variables(), batch["image"], train=False), batch)
        metric_dtypes |= {x.dtype for x in jax.tree.leaves(metrics)}
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2% per operation): a few
    # layers deep the loss stays within 1%, the gradient's direction within 8 degrees (cosine
    # 0.99) and its norm within 10% (measured here: 7%, the Dice term being a ratio of sums).
    assert float(losses[True]) == pytest.approx(float(losses[False]), rel=1e-2)
    a, b = (np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads[h])]) for h in (False, True))
    assert np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.99
    assert abs(np.linalg.norm(b) / np.linalg.norm(a) - 1) < 0.1
    assert metric_dtypes == {jnp.dtype(jnp.float32)}


def test_a_short_bf16_run_follows_the_float32_loss_curve(tmp_path):
    curves = {}
    for half in (False, True):
        train.fit(_config(tmp_path, "segmentation", half, num_epochs=3), str(tmp_path / f"run-{half}"))
        with open(tmp_path / f"run-{half}" / "metrics.jsonl") as f:
            curves[half] = [r["loss"] for r in map(json.loads, f) if r["split"] == "train"]
    assert len(curves[True]) == 3 and curves[False][-1] < curves[False][0]
    np.testing.assert_allclose(curves[True], curves[False], rtol=0.03)  # three epochs of 12 steps
