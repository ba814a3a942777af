"""InceptionV3: Keras's structure and counts, shapes, batch norm, gradients and freezing.

Parity with Keras's outputs is in tests/test_convert.py. Sizes and counts come from
`jax.eval_shape` (no compile at 299x299); the compiled checks run at 75x75, batch 2, with
random variables made on the host (a real `init` compiles ~94 random initialisers, ~15 s).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.models import InceptionV3, build_model, count_params, masked_optimizer, preprocess_input, trainable_mask

SIZE = 75
KEY = jax.random.PRNGKey(0)


def shapes(model, size=299):
    return jax.eval_shape(model.init, KEY, jnp.zeros((1, size, size, 3)))


@functools.lru_cache(maxsize=2)
def random_variables(model, seed=0):
    """Variables with the model's shapes: He-normal kernels, non-trivial batch-norm stats."""
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = path[-1].key
        if name == "kernel":
            return jnp.asarray(rng.normal(0, np.sqrt(2 / np.prod(s.shape[:-1])), s.shape), jnp.float32)
        if name == "var":
            return jnp.asarray(rng.uniform(0.5, 2.0, s.shape), jnp.float32)
        return jnp.asarray(rng.normal(0, 0.1, s.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes(model, SIZE))


def inputs(batch=2, seed=1):
    return jax.random.uniform(jax.random.PRNGKey(seed), (batch, SIZE, SIZE, 3), minval=-1, maxval=1)


def test_counts_and_names_match_keras():
    v = shapes(InceptionV3())
    assert count_params(v["params"]) == 23_817_352
    assert count_params(v["batch_stats"]) == 34_432
    assert count_params(v) == 23_851_784  # keras: model.count_params()
    suffix = lambda i: "" if i == 0 else f"_{i}"
    convs = {f"conv2d{suffix(i)}" for i in range(94)}
    bns = {f"batch_normalization{suffix(i)}" for i in range(94)}
    assert set(v["params"]) == convs | bns | {"predictions"}
    assert set(v["batch_stats"]) == bns
    for name in convs:
        assert set(v["params"][name]) == {"kernel"}  # no bias
    for name in bns:
        assert set(v["params"][name]) == {"bias"}  # no scale
        assert set(v["batch_stats"][name]) == {"mean", "var"}
    assert v["params"]["predictions"]["kernel"].shape == (2048, 1000)
    assert v["params"]["conv2d"]["kernel"].shape == (3, 3, 3, 32)
    assert v["params"]["conv2d_93"]["kernel"].shape == (1, 1, 2048, 192)


@pytest.mark.parametrize(
    "kwargs,size,expected",
    [
        (dict(), 299, (2, 1000)),
        (dict(num_classes=102), 299, (2, 102)),
        (dict(include_top=False), 299, (2, 8, 8, 2048)),
        (dict(include_top=False, pooling="avg"), 299, (2, 2048)),
        (dict(include_top=False, pooling="max"), 299, (2, 2048)),
        (dict(include_top=False), 75, (2, 1, 1, 2048)),
        (dict(include_top=False), 150, (2, 3, 3, 2048)),
    ],
)
def test_output_shapes(kwargs, size, expected):
    model = InceptionV3(**kwargs)
    v = shapes(model, size)
    out = jax.eval_shape(model.apply, v, jnp.zeros((2, size, size, 3)))
    assert out.shape == expected


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 75"):
        shapes(InceptionV3(), 64)
    with pytest.raises(ValueError, match="pooling"):
        shapes(InceptionV3(include_top=False, pooling="sum"))
    assert isinstance(build_model("inception_v3", num_classes=7), InceptionV3)


def test_preprocess_input():
    x = np.array([0, 127.5, 255], np.float32)
    np.testing.assert_allclose(preprocess_input(x), [-1, 0, 1])


def test_training_updates_statistics_and_gradients_reach_every_parameter():
    model = InceptionV3(num_classes=5)
    v = random_variables(model)
    x = inputs()

    @jax.jit
    def grads(params, stats):
        def loss(p):
            y, upd = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            return jnp.mean(jax.nn.log_softmax(y)[:, 0] * jnp.arange(1, 3)), upd

        return jax.grad(loss, has_aux=True)(params)

    g, upd = grads(v["params"], v["batch_stats"])
    norms = jax.tree.map(lambda a: float(jnp.abs(a).max()), g)
    dead = [jax.tree_util.keystr(p) for p, n in jax.tree_util.tree_flatten_with_path(norms)[0] if not n > 0]
    assert not dead, f"no gradient reaches {dead}"
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), upd["batch_stats"], v["batch_stats"])
    assert all(jax.tree.leaves(changed))  # every mean and var moved
    # Keras's momentum 0.99: new = 0.99 * old + 0.01 * batch statistic (biased variance)
    z = jax.lax.conv_general_dilated(
        x, v["params"]["conv2d"]["kernel"], (2, 2), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    for stat, batch in (("mean", z.mean((0, 1, 2))), ("var", z.var((0, 1, 2)))):
        old = v["batch_stats"]["batch_normalization"][stat]
        np.testing.assert_allclose(
            upd["batch_stats"]["batch_normalization"][stat], 0.99 * old + 0.01 * batch, rtol=1e-4, atol=1e-5
        )


def test_inference_leaves_statistics_alone():
    model = InceptionV3(num_classes=5)
    v = random_variables(model)
    _, upd = jax.jit(lambda v, x: model.apply(v, x, train=False, mutable=["batch_stats"]))(v, inputs())
    for a, b in zip(jax.tree.leaves(upd["batch_stats"]), jax.tree.leaves(v["batch_stats"])):
        np.testing.assert_array_equal(a, b)


def test_frozen_backbone_step_changes_only_the_head():
    model = InceptionV3(num_classes=5, freeze_backbone=True)
    v = random_variables(InceptionV3(num_classes=5))  # same shapes, cached
    mask = trainable_mask(model, v["params"])
    trainable = [jax.tree_util.keystr(p) for p, m in jax.tree_util.tree_flatten_with_path(mask)[0] if m]
    assert trainable == ["['predictions']['bias']", "['predictions']['kernel']"]
    assert count_params(v["params"]["predictions"]) == 2048 * 5 + 5
    tx = masked_optimizer(optax.adamax(1e-2), mask)
    opt_state = tx.init(v["params"])
    x, labels = inputs(), jnp.array([1, 3])

    @jax.jit
    def step(params, stats, opt_state):
        def loss(p):
            y, upd = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(y), labels[:, None], 1)), (upd, y)

        (_, (upd, y)), g = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), upd["batch_stats"], opt_state, y

    params, stats, _, y_train = step(v["params"], v["batch_stats"], opt_state)
    for name in v["params"]:
        same = all(
            bool(jnp.array_equal(a, b))
            for a, b in zip(jax.tree.leaves(params[name]), jax.tree.leaves(v["params"][name]))
        )
        assert same == (name != "predictions"), name
    for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(v["batch_stats"])):
        np.testing.assert_array_equal(a, b)  # frozen batch norm: inference mode
    y_eval = jax.jit(lambda v, x: model.apply(v, x, train=False))(v, x)
    np.testing.assert_allclose(y_train, y_eval, rtol=1e-5, atol=1e-5)
