"""Parameter paths as '/'-joined names, and prefix matching on whole names.

`under('conv_10/kernel', 'conv_1')` is False: a prefix names whole path components, so the
L2 scope, frozen parameters and trainable heads (losses, train/optim, models) never catch a
neighbour whose name merely starts the same way."""

from __future__ import annotations


def path_str(key_path) -> str:
    """'/'-joined names of a jax key path (dict keys, sequence indices)."""
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in key_path)


def under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or lies inside it."""
    prefix = prefix.strip("/")
    return path == prefix or path.startswith(prefix + "/")
