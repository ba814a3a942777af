"""PCA baseline: error falls with k and vanishes at full rank; the three routes agree."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxvision import pca as pca_lib


def low_rank_images(n=24, shape=(6, 6, 3), rank=8, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    basis = np.linalg.qr(rng.normal(size=(d, rank)))[0].T  # rank x d orthonormal
    codes = rng.normal(size=(n, rank)) * np.geomspace(4, 0.5, rank)  # distinct spectrum
    x = 0.5 + 0.1 * codes @ basis + noise * rng.normal(size=(n, d))
    return x.reshape((n,) + shape).astype(np.float32)


@pytest.mark.parametrize("method", ["svd", "gram", "randomized"])
def test_error_falls_with_k_and_is_zero_at_full_rank(method):
    x = low_rank_images()
    p = pca_lib.fit(x, method=method)
    assert p.max_k == x.shape[0] - 1  # centred: rank N - 1
    errors = [float(p.reconstruction_errors(x, k)["mse"].mean()) for k in range(p.max_k + 1)]
    assert all(b <= a * (1 + 1e-5) + 1e-12 for a, b in zip(errors, errors[1:]))
    assert errors[0] > 1e-3
    assert errors[-1] < 1e-10 * errors[0] + 1e-11  # full rank: exact
    np.testing.assert_allclose(p.reconstruct(x), x, atol=1e-5)
    # mean squared error with k components = sum of the left-out variances / D
    s2 = np.asarray(p.singular_values) ** 2
    d = x[0].size
    for k in (0, 3, 8):
        np.testing.assert_allclose(errors[k], s2[k:].sum() / (x.shape[0] * d), rtol=1e-3)


def test_more_samples_than_pixels():
    x = low_rank_images(n=40, shape=(3, 3, 1), rank=9, noise=0.0)
    p = pca_lib.fit(x)
    assert p.max_k == 9
    unseen = low_rank_images(n=5, shape=(3, 3, 1), rank=9, seed=1)
    errs = p.reconstruction_errors(unseen)  # full basis of R^9
    assert float(errs["mse"].max()) < 1e-10 and float(errs["mae"].max()) < 1e-5


def test_routes_agree_with_float64_numpy():
    x = low_rank_images(n=30, rank=10)
    flat = x.reshape(len(x), -1).astype(np.float64)
    xc = flat - flat.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    for method in ("svd", "gram", "randomized"):
        p = pca_lib.fit(x, k=10, method=method, key=jax.random.PRNGKey(4))
        assert p.max_k == 10
        np.testing.assert_allclose(p.singular_values, s[:10], rtol=1e-3, err_msg=method)
        c = np.asarray(p.components, np.float64)
        np.testing.assert_allclose(c @ c.T, np.eye(10), atol=1e-5, err_msg=method)
        # same subspace: the projectors agree
        np.testing.assert_allclose(c.T @ c, vt[:10].T @ vt[:10], atol=1e-3, err_msg=method)


def test_encode_decode_shapes_and_errors():
    x = low_rank_images()
    p = pca_lib.fit((x * 255).astype(np.uint8), k=5)
    assert p.max_k == 5 and p.sample_shape == (6, 6, 3)
    codes = p.encode(x[:4] * 255, 3)
    assert codes.shape == (4, 3)
    assert p.decode(codes).shape == (4, 6, 6, 3)
    np.testing.assert_allclose(p.decode(codes), p.reconstruct(x[:4] * 255, 3), atol=1e-4)
    np.testing.assert_allclose(p.encode(x[:4].reshape(4, -1) * 255, 3), codes, atol=1e-3)
    errs = p.reconstruction_errors(x[:4] * 255, 2)
    assert errs["mse"].shape == errs["mae"].shape == (4,)
    with pytest.raises(ValueError, match="max_k"):
        p.encode(x, 6)
    with pytest.raises(ValueError, match="Expected a batch"):
        p.encode(x[:, :3])
    with pytest.raises(ValueError, match="method"):
        pca_lib.fit(x, method="eig")
    with pytest.raises(ValueError, match="at least 2 samples"):
        pca_lib.fit(x[:1])


def test_rank_tolerance_drops_null_directions():
    x = low_rank_images(n=20, rank=4, noise=0.0)
    assert pca_lib.fit(x, rank_tol=1e-3).max_k == 4
    assert pca_lib.fit(x).max_k == 19


def test_auto_route_for_the_papers_sizes():
    d = 128 * 128 * 3
    assert pca_lib.choose_method(657, d, 656) == "gram"  # k = 2048..8192, capped
    assert pca_lib.choose_method(657, d, 64) == "randomized"
    assert pca_lib.choose_method(5000, 100, 100) == "svd"
