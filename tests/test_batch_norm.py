"""layers.BatchNorm: nn.BatchNorm's two-pass statistics, taken in one pass shifted by the running mean."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.models.layers import BatchNorm

KW = dict(momentum=0.9, epsilon=1e-3)


def _batch(offset=0.0, seed=0, shape=(8, 6, 6, 5)):
    x = jax.random.normal(jax.random.key(seed), shape) * jnp.arange(1.0, shape[-1] + 1)
    return x + offset


def _train(module, variables, x):
    return module.apply(variables, x, use_running_average=False, mutable=["batch_stats"])


def test_same_variables_as_nn_batch_norm_and_the_same_inference():
    x = _batch()
    ours = BatchNorm(**KW).init(jax.random.key(0), x, use_running_average=True)
    theirs = nn.BatchNorm(**KW).init(jax.random.key(0), x, use_running_average=True)
    assert jax.tree.map(jnp.shape, ours) == jax.tree.map(jnp.shape, theirs)
    v = jax.tree.map(lambda a: a + jax.random.uniform(jax.random.key(1), a.shape), theirs)
    np.testing.assert_array_equal(
        BatchNorm(**KW).apply(v, x, use_running_average=True), nn.BatchNorm(**KW).apply(v, x, use_running_average=True)
    )


def test_training_matches_flax_two_pass_output_statistics_and_gradients():
    x = _batch(offset=3.0)
    v = nn.BatchNorm(**KW).init(jax.random.key(0), x, use_running_average=True)
    v = {"params": v["params"], "batch_stats": {"mean": jnp.full(5, 2.5), "var": jnp.full(5, 2.0)}}
    two_pass = nn.BatchNorm(use_fast_variance=False, **KW)

    def loss(module, params, x):
        y, upd = _train(module, {"params": params, "batch_stats": v["batch_stats"]}, x)
        return (y * jnp.cos(x)).sum(), (y, upd)

    (_, (y, upd)), grads = jax.value_and_grad(lambda p, x: loss(BatchNorm(**KW), p, x), (0, 1), has_aux=True)(
        v["params"], x
    )
    (_, (y2, upd2)), grads2 = jax.value_and_grad(lambda p, x: loss(two_pass, p, x), (0, 1), has_aux=True)(
        v["params"], x
    )
    # float32 sums over 288 values a channel: a few units in the 6th digit apart, not more
    np.testing.assert_allclose(y, y2, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves((upd, grads)), jax.tree.leaves((upd2, grads2))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(upd["batch_stats"]["mean"], v["batch_stats"]["mean"])  # they did move


def test_a_large_mean_is_as_accurate_as_two_pass_once_the_running_mean_is_near_it():
    x = _batch(offset=1000.0)
    exact = np.var(np.asarray(x, np.float64), axis=(0, 1, 2))
    v = nn.BatchNorm(**KW).init(jax.random.key(0), x, use_running_average=True)
    near = {"params": v["params"], "batch_stats": {"mean": jnp.full(5, 999.0), "var": jnp.ones(5)}}

    def batch_var(module):
        _, upd = _train(module, near, x)
        return (np.asarray(upd["batch_stats"]["var"], np.float64) - 0.9) / 0.1  # undo the momentum

    # E[x^2] - E[x]^2 at 1e6 loses ~6 digits of float32; shifted by 999 it loses none of note
    assert np.max(np.abs(batch_var(BatchNorm(**KW)) / exact - 1)) < 1e-4
    assert np.max(np.abs(batch_var(nn.BatchNorm(use_fast_variance=True, **KW)) / exact - 1)) > 1e-3


def test_averaged_across_devices_the_statistics_are_the_whole_batch_ones():
    n = jax.local_device_count()
    x = _batch(offset=2.0, shape=(4 * n, 5, 5, 3))
    v = BatchNorm(**KW).init(jax.random.key(0), x, use_running_average=True)
    v = {"params": v["params"], "batch_stats": {"mean": jnp.full(3, 1.5), "var": jnp.ones(3)}}
    sharded = jax.pmap(lambda v, x: _train(BatchNorm(axis_name="d", **KW), v, x), axis_name="d", in_axes=(None, 0))(
        v, x.reshape(n, 4, 5, 5, 3)
    )
    whole = _train(nn.BatchNorm(use_fast_variance=False, **KW), v, x)
    # float32: the devices' partial means summed in another order
    np.testing.assert_allclose(sharded[0].reshape(x.shape), whole[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(sharded[1]), jax.tree.leaves(whole[1])):
        np.testing.assert_allclose(a, np.broadcast_to(b, a.shape), rtol=1e-5, atol=1e-6)
