"""layers.Dropout: flax's inverted dropout, each unit's draw an 8- or 16-bit slice of a random word."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models.layers import Dropout

SHAPE = (9, 333, 335)  # a first axis that 4 (and 2) lanes do not divide: the last word is cut


def _apply(rate, x, seed=0, deterministic=False):
    return Dropout(rate, deterministic=deterministic).apply({}, x, rngs={"dropout": jax.random.key(seed)})


def _within(observed, p, n):
    # a binomial over n units: 5 standard deviations (under 2e-3 here) leave a false alarm at
    # ~1e-6, while a draw with one bit too few would miss the rate by far more.
    return abs(observed - p) < 5 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("rate,levels", [(0.25, 256), (0.5, 256), (0.1, 65536)])
def test_keeps_each_unit_with_probability_one_minus_rate_and_scales_it_as_flax_does(rate, levels):
    x = jnp.linspace(0.5, 2.0, np.prod(SHAPE), dtype=jnp.float32).reshape(SHAPE)
    y = np.asarray(_apply(rate, x))
    kept = y != 0
    assert _within(kept.mean(), 1 - rate, kept.size)
    expected = np.asarray(x / jnp.float32(round((1 - rate) * levels) / levels))
    np.testing.assert_array_equal(y[kept], expected[kept])  # float32 division, as flax's x / keep


@pytest.mark.parametrize("rate,lanes", [(0.25, 4), (0.1, 2)])
def test_the_units_that_share_a_word_are_independent(rate, lanes):
    kept = np.asarray(_apply(rate, jnp.ones((8, 500, 500)))) != 0
    step = 8 // lanes  # rows i, i + step, ... take their draws from the same words
    keep = 1 - rate
    for a in range(0, 8, step):
        for b in range(a + step, 8, step):
            both = kept[a] & kept[b]
            assert _within(both.mean(), keep**2, both.size), (a, b)


def test_gradient_flows_through_the_kept_units_only_and_keys_give_other_masks():
    x = jnp.ones((64, 33))
    grad = jax.grad(lambda v: _apply(0.5, v).sum())(x)
    kept = np.asarray(_apply(0.5, x)) != 0
    np.testing.assert_array_equal(np.asarray(grad) != 0, kept)
    assert (kept != (np.asarray(_apply(0.5, x, seed=1)) != 0)).mean() > 0.4  # about 0.5 for new keys


def test_deterministic_rate_zero_and_rate_one_as_flax():
    x = jnp.arange(12.0).reshape(3, 4)
    key = {"dropout": jax.random.key(0)}
    for rate, deterministic in ((0.5, True), (0.0, False), (1.0, False)):
        ours = _apply(rate, x, deterministic=deterministic)
        theirs = nn.Dropout(rate, deterministic=deterministic).apply({}, x, rngs=key)
        np.testing.assert_array_equal(ours, theirs)
    assert _apply(0.5, jnp.float32(3.0)).shape == ()
    with pytest.raises(ValueError, match="outside"):
        _apply(1.5, x)
