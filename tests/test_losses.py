"""Losses against autodiff, finite differences and independent references (optax, numpy, Keras)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision import losses


def naive_softmax(z):
    e = jnp.exp(z - jnp.max(z, -1, keepdims=True))
    return e / jnp.sum(e, -1, keepdims=True)


def logits_cases(rng):
    return {
        "random": rng.normal(size=(3, 7)),
        "extreme": rng.choice([-1e3, 1e3, 0.0, 5e2], size=(3, 7)) + rng.normal(size=(3, 7)),
    }


@pytest.mark.parametrize("case", ["random", "extreme"])
def test_softmax_jacobian_matches_autodiff_and_finite_differences(case):
    # float64 throughout: autodiff agrees to rounding (1e-12); central differences with
    # h = 1e-6 carry O(h^2) truncation plus O(eps/h) ~ 1e-10 rounding error, hence 1e-8.
    with jax.enable_x64(True):
        for z in logits_cases(np.random.default_rng(0))[case]:
            z = jnp.asarray(z, jnp.float64)
            jac = losses.softmax_jacobian(z)
            assert jac.shape == (7, 7) and not jnp.any(jnp.isnan(jac))
            np.testing.assert_allclose(jac, jax.jacfwd(naive_softmax)(z), atol=1e-12)
            np.testing.assert_allclose(jac, jax.jacrev(naive_softmax)(z), atol=1e-12)
            h = 1e-6
            fd = jnp.stack(
                [(naive_softmax(z + h * e) - naive_softmax(z - h * e)) / (2 * h) for e in jnp.eye(7)],
                axis=1,
            )
            np.testing.assert_allclose(jac, fd, atol=1e-8)


def test_softmax_jacobian_entries_are_the_papers_equations():
    with jax.enable_x64(True):
        z = jnp.asarray([0.3, -1.2, 2.0, 0.0], jnp.float64)
        y = np.exp(z) / np.exp(z).sum()
        jac = np.asarray(losses.softmax_jacobian(z))
        for i in range(4):
            for j in range(4):
                expected = y[i] * (1 - y[i]) if i == j else -y[i] * y[j]  # eq. 4 and eq. 5
                assert jac[i, j] == pytest.approx(expected, abs=1e-15)
        # Batched input gives one matrix per example.
        assert losses.softmax_jacobian(jnp.zeros((2, 5, 3))).shape == (2, 5, 3, 3)


@pytest.mark.parametrize("case", ["random", "extreme"])
def test_softmax_custom_vjp_equals_autodiff_of_naive_softmax(case):
    # Different but exact formulas for the same product: float64 rounding only.
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        z = jnp.asarray(logits_cases(rng)[case], jnp.float64)
        g = jnp.asarray(rng.normal(size=z.shape), jnp.float64)
        _, vjp_ours = jax.vjp(losses.softmax, z)
        _, vjp_ref = jax.vjp(naive_softmax, z)
        np.testing.assert_allclose(vjp_ours(g)[0], vjp_ref(g)[0], atol=1e-12)
        np.testing.assert_allclose(losses.softmax(z), naive_softmax(z), atol=1e-15)
        # The custom rule also holds along another axis and under jit.
        zt = z.T
        ours = jax.jit(jax.grad(lambda x: jnp.sum(g.T * losses.softmax(x, axis=0))))(zt)
        ref = jax.grad(lambda x: jnp.sum(g.T * jax.nn.softmax(x, axis=0)))(zt)
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_softmax_backward_is_the_hand_written_rule_not_autodiff():
    # A VJP equal to J^T g with J from softmax_jacobian, for a random cotangent.
    with jax.enable_x64(True):
        z = jnp.asarray([1.0, 2.0, -3.0], jnp.float64)
        g = jnp.asarray([0.5, -1.0, 2.0], jnp.float64)
        _, vjp = jax.vjp(losses.softmax, z)
        np.testing.assert_allclose(vjp(g)[0], losses.softmax_jacobian(z).T @ g, atol=1e-14)


def test_softmax_cross_entropy_gradient_is_softmax_minus_targets():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        z = jnp.asarray(rng.normal(size=(4, 6)) * 10, jnp.float64)
        t = jax.nn.one_hot(jnp.array([0, 5, 2, 2]), 6, dtype=jnp.float64)
        soft = jax.nn.softmax(jnp.asarray(rng.normal(size=(4, 6))))  # probability targets too
        for targets in (t, soft):
            grad = jax.grad(lambda x: jnp.sum(losses.softmax_cross_entropy(x, targets)))(z)
            np.testing.assert_allclose(grad, losses.softmax(z) - targets, atol=1e-12)


def test_softmax_cross_entropy_and_log_softmax_match_optax():
    # float32, values of order 1-100: relative 1e-5 covers float32 rounding.
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(size=(5, 10)) * 3, jnp.float32)
    t = jax.nn.one_hot(jnp.arange(5), 10)
    np.testing.assert_allclose(losses.softmax_cross_entropy(z, t), optax.softmax_cross_entropy(z, t), rtol=1e-5)
    np.testing.assert_allclose(losses.log_softmax(z), jax.nn.log_softmax(z), rtol=1e-5, atol=1e-6)
    extreme = jnp.asarray([[1e4, -1e4, 0.0]], jnp.float32)
    assert losses.softmax_cross_entropy(extreme, jnp.asarray([[0.0, 1.0, 0.0]]))[0] == pytest.approx(2e4)
    assert np.isfinite(losses.log_softmax(extreme)).all()


def test_sigmoid_binary_cross_entropy_matches_optax_and_keras_convention():
    rng = np.random.default_rng(4)
    z = jnp.asarray(rng.normal(size=(3, 4, 5)) * 4, jnp.float32)
    t = jnp.asarray(rng.integers(0, 2, size=(3, 4, 5)), jnp.float32)
    ours = losses.sigmoid_binary_cross_entropy(z, t)
    assert ours.shape == (3,)  # one value per example: mean over every non-batch axis
    ref = optax.sigmoid_binary_cross_entropy(z, t).mean(axis=(1, 2))
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_sigmoid_binary_cross_entropy_is_exact_for_huge_logits():
    z = jnp.asarray([[1e4, -1e4, 1e4, -1e4]], jnp.float32)
    t = jnp.asarray([[1.0, 0.0, 0.0, 1.0]], jnp.float32)
    # Right answers cost log(1 + e^-1e4) = 0; wrong ones cost exactly |z| = 1e4.
    value = losses.sigmoid_binary_cross_entropy(z, t)
    assert value[0] == pytest.approx((0 + 0 + 1e4 + 1e4) / 4)
    grad = jax.grad(lambda x: losses.sigmoid_binary_cross_entropy(x, t).sum())(z)
    np.testing.assert_allclose(grad, [[0.0, 0.0, 0.25, -0.25]])


def test_binary_cross_entropy_on_softmax_outputs_matches_keras():
    import keras

    rng = np.random.default_rng(5)
    probs = np.array(jax.nn.softmax(rng.normal(size=(6, 102)) * 3), np.float32)
    probs[0, :3] = [0.0, 1.0, 0.0]  # exact 0 and 1 exercise the clipping
    targets = np.eye(102, dtype=np.float32)[rng.integers(0, 102, size=6)]
    ours = losses.binary_cross_entropy(jnp.asarray(probs), jnp.asarray(targets))
    ref = keras.losses.binary_crossentropy(targets, probs)
    # Both float32, same clipping; differences are float32 rounding of the logs.
    np.testing.assert_allclose(ours, np.asarray(ref), rtol=1e-5, atol=1e-7)
    assert np.isfinite(ours).all()


def test_binary_cross_entropy_numpy_formula_and_clipping():
    p = jnp.asarray([[0.0, 1.0, 0.25, 0.9]], jnp.float32)
    t = jnp.asarray([[1.0, 1.0, 0.0, 0.0]], jnp.float32)
    eps = 1e-7
    pc = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    tn = np.asarray(t, np.float64)
    expected = float(-(tn * np.log(pc) + (1 - tn) * np.log(1 - pc)).mean())
    assert float(losses.binary_cross_entropy(p, t)[0]) == pytest.approx(expected, rel=1e-5)


def test_dice_loss_against_numpy():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(2, 8, 8, 1)).astype(np.float32)
    t = (rng.random(size=(2, 8, 8, 1)) < 0.3).astype(np.float32)
    p = 1 / (1 + np.exp(-z.astype(np.float64)))
    inter = (p * t).sum(axis=(1, 2, 3))
    expected = 1 - (2 * inter + 1) / (p.sum(axis=(1, 2, 3)) + t.sum(axis=(1, 2, 3)) + 1)
    np.testing.assert_allclose(losses.dice_loss(jnp.asarray(z), jnp.asarray(t)), expected, rtol=1e-5)
    # A confident perfect prediction scores ~0; a confident empty prediction of a mask ~1.
    mask = jnp.asarray(t)
    assert float(losses.dice_loss(jnp.where(mask > 0, 50.0, -50.0), mask).max()) < 1e-6
    assert float(losses.dice_loss(jnp.full(mask.shape, -50.0), mask).min()) > 0.9
    # Empty prediction of an empty mask: smooth makes it a perfect 0, not 0/0.
    assert float(losses.dice_loss(jnp.full((1, 4, 4, 1), -50.0), jnp.zeros((1, 4, 4, 1)))[0]) < 1e-6


def test_mse_and_mae_against_numpy():
    rng = np.random.default_rng(7)
    a, b = rng.random(size=(2, 3, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.mean_squared_error(a, b), ((a - b) ** 2).mean(axis=(1, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(losses.mean_absolute_error(a, b), np.abs(a - b).mean(axis=(1, 2, 3)), rtol=1e-6)


def test_l2_penalty_counts_only_selected_kernels():
    params = {
        "conv_0": {"kernel": jnp.full((2, 2), 1.0), "bias": jnp.full((2,), 5.0)},
        "conv_1": {"kernel": jnp.full((3,), 2.0)},
        "head": {"kernel": jnp.full((1,), 3.0)},
        "conv_10": {"kernel": jnp.full((1,), 4.0)},
    }
    assert float(losses.l2_penalty(params, 0.5)) == pytest.approx(0.5 * (4 + 12 + 9 + 16))
    # a prefix names whole components: conv_1 is not a prefix of conv_10
    assert float(losses.l2_penalty(params, 0.1, prefixes=["conv_1", "head"])) == pytest.approx(0.1 * 21)
    grad = jax.grad(lambda p: losses.l2_penalty(p, 0.5))(params)
    np.testing.assert_allclose(grad["conv_1"]["kernel"], 2 * 0.5 * 2.0)
    np.testing.assert_allclose(grad["conv_0"]["bias"], 0.0)


def test_losses_are_jit_compatible_and_per_example():
    z = jnp.zeros((4, 3))
    t = jax.nn.one_hot(jnp.arange(4) % 3, 3)
    for fn in (
        losses.softmax_cross_entropy,
        losses.sigmoid_binary_cross_entropy,
        lambda a, b: losses.binary_cross_entropy(jax.nn.sigmoid(a), b),
        losses.dice_loss,
        losses.mean_squared_error,
        losses.mean_absolute_error,
    ):
        out = jax.jit(fn)(z, t)
        assert out.shape == (4,)
        np.testing.assert_allclose(out, fn(z, t), rtol=1e-6)
