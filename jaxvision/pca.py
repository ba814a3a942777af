"""Paper B's PCA baseline: principal components of flattened training images, in JAX.

    pca = fit(train_images)                        # (N, H, W, C) or (N, D), any float/uint8
    codes = pca.encode(images, k)                  # (M, k)
    recon = pca.reconstruct(images, k)             # (M, H, W, C)
    errors = pca.reconstruction_errors(images, k)  # {'mse': (M,), 'mae': (M,)} per image

so that PCA with k = 2048 / 4096 / 8192 components (or as many as the data allows) can be
compared with the autoencoders on MSE and MAE.

Centred data X (N x D) has rank at most min(N - 1, D): with the paper's 657 training images of
128x128x3 = 49,152 features, at most 656 components exist, and `max_k` says so. The
D x D covariance (9.7 GB in float32 for 49,152 features) is never formed. Three routes:

* 'svd'        thin SVD of X: exact and stable; the SVD's workspace is O(N D).
* 'gram'       eigenvectors of the N x N Gram matrix X X^T (the covariance trick, for D >> N),
               mapped back to feature space; needs O(N^2 + N D) memory.
* 'randomized' a randomised range finder (Halko, Martinsson & Tropp 2011) with oversampling
               and power iterations, for k well below min(N, D); O((k + p) (N + D)) memory.

'gram' and 'randomized' end with a Rayleigh-Ritz step (an SVD of X Q for the orthonormal basis
Q they found), so their components are orthonormal to working precision and their singular
values are those of X restricted to Q. 'auto' picks 'randomized' when k <= min(N, D) / 4,
'gram' when D >= 4 N, and 'svd' otherwise.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

METHODS = ("auto", "svd", "gram", "randomized")


@struct.dataclass
class PCA:
    """A fitted PCA. `components` rows are orthonormal, by decreasing singular value."""

    mean: jax.Array  # (D,)
    components: jax.Array  # (r, D)
    singular_values: jax.Array  # (r,) of the centred training matrix
    n_samples: int = struct.field(pytree_node=False)
    sample_shape: tuple = struct.field(pytree_node=False)

    @property
    def max_k(self) -> int:
        """Number of components kept (at most min(N - 1, D) for N training samples)."""
        return int(self.components.shape[0])

    @property
    def explained_variance(self) -> jax.Array:
        return self.singular_values**2 / max(self.n_samples - 1, 1)

    def _k(self, k: int | None) -> int:
        if k is None:
            return self.max_k
        if not 0 <= k <= self.max_k:
            raise ValueError(
                f"k={k} components asked for, but this PCA has {self.max_k} "
                f"(fitted on {self.n_samples} samples of {self.mean.shape[0]} "
                f"features): use k <= max_k."
            )
        return int(k)

    def _flatten(self, images) -> jax.Array:
        x = jnp.asarray(images, self.mean.dtype)
        d = self.mean.shape[0]
        if x.ndim < 2 or x.shape[1:] not in (tuple(self.sample_shape), (d,)):
            raise ValueError(
                f"Expected a batch of shape (M, {', '.join(map(str, self.sample_shape))}) or (M, {d}), got {x.shape}."
            )
        return x.reshape(-1, d)

    def encode(self, images, k: int | None = None) -> jax.Array:
        """Projections (M, k) on the first k components."""
        return _encode(self._flatten(images), self.mean, self.components[: self._k(k)])

    def decode(self, codes) -> jax.Array:
        """Images (M, *sample_shape) from codes (M, k) of the first k components."""
        codes = jnp.asarray(codes, self.mean.dtype)
        k = self._k(codes.shape[-1])
        x = _decode(codes, self.mean, self.components[:k])
        return x.reshape((-1,) + tuple(self.sample_shape))

    def reconstruct(self, images, k: int | None = None) -> jax.Array:
        """Images projected on the first k components, in the images' own shape."""
        return self.decode(self.encode(images, k))

    def reconstruction_errors(self, images, k: int | None = None) -> dict[str, jax.Array]:
        """Per-image mean squared and mean absolute reconstruction error with k components."""
        x = self._flatten(images)
        diff = (
            _decode(_encode(x, self.mean, self.components[: self._k(k)]), self.mean, self.components[: self._k(k)]) - x
        )
        return {"mse": jnp.mean(diff**2, axis=-1), "mae": jnp.mean(jnp.abs(diff), axis=-1)}


@jax.jit
def _encode(x, mean, components):
    return (x - mean) @ components.T


@jax.jit
def _decode(codes, mean, components):
    return codes @ components + mean


def _rayleigh_ritz(xc, q):
    """Components and singular values of xc within the column space of q (D x r, orthonormal)."""
    _, s, wt = jnp.linalg.svd(xc @ q, full_matrices=False)
    return wt @ q.T, s


def _svd(xc, r, key):
    del key
    _, s, vt = jnp.linalg.svd(xc, full_matrices=False)
    return vt[:r], s[:r]


def _gram(xc, r, key):
    del key
    gram = xc @ xc.T  # N x N
    w, u = jnp.linalg.eigh(gram)  # ascending
    u = u[:, ::-1][:, :r]
    q, _ = jnp.linalg.qr(xc.T @ u)  # D x r, orthonormal
    return _rayleigh_ritz(xc, q)


def _randomized(xc, r, key, oversample=10, power_iterations=4):
    n, d = xc.shape
    width = min(r + oversample, n, d)
    q, _ = jnp.linalg.qr(xc.T @ jax.random.normal(key, (n, width), xc.dtype))  # D x width
    for _ in range(power_iterations):
        p, _ = jnp.linalg.qr(xc @ q)  # N x width
        q, _ = jnp.linalg.qr(xc.T @ p)  # D x width
    components, s = _rayleigh_ritz(xc, q)
    return components[:r], s[:r]


_ROUTES = {"svd": _svd, "gram": _gram, "randomized": _randomized}


def choose_method(n: int, d: int, k: int) -> str:
    """The route 'auto' takes for N samples, D features and k components."""
    if k <= min(n, d) // 4:
        return "randomized"
    if d >= 4 * n:
        return "gram"
    return "svd"


def fit(
    images,
    k: int | None = None,
    *,
    method: str = "auto",
    key: Any = None,
    dtype: Any = jnp.float32,
    rank_tol: float | None = None,
) -> PCA:
    """Fit PCA on `images` (N, ...) flattened to (N, D); keep min(k, rank) components.

    Args:
      images: array (N, H, W, C) or (N, D), on the host or a device.
      k: components to keep (default: all there are); capped at the data's rank.
      method: 'auto', 'svd', 'gram' or 'randomized' (see the module docstring).
      key: PRNG key of the randomised route (default PRNGKey(0)).
      dtype: computation dtype (float32; float64 needs `jax_enable_x64`).
      rank_tol: if given, components whose singular value is below `rank_tol * s_max` are
        dropped (numerical rank; e.g. `max(N, D) * eps` as numpy's matrix_rank). By default all
        min(k, N - 1, D) are kept: those of (numerically) zero variance are still orthonormal
        directions, so they never make a reconstruction worse.

    Returns:
      A `PCA` with `max_k` = the number of components kept.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    images = np.asarray(images) if not isinstance(images, jax.Array) else images
    if images.ndim < 2 or images.shape[0] < 2:
        raise ValueError(f"PCA needs at least 2 samples (N, ...), got shape {images.shape}.")
    n, sample_shape = images.shape[0], tuple(images.shape[1:])
    d = int(np.prod(sample_shape))
    x = jnp.asarray(images, dtype).reshape(n, d)
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    limit = min(n - 1, d)  # centred data: rank <= N - 1
    r = limit if k is None else min(int(k), limit)
    if r < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    if method == "auto":
        method = choose_method(n, d, r)
    key = jax.random.PRNGKey(0) if key is None else key
    components, s = _ROUTES[method](xc, r, key)
    keep = r if rank_tol is None else int(jnp.sum(s > rank_tol * s[0]))
    return PCA(
        mean=mean, components=components[:keep], singular_values=s[:keep], n_samples=n, sample_shape=sample_shape
    )
