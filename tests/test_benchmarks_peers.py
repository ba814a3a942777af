"""The benchmark's PyTorch and Keras peers hold exactly as many parameters as jaxvision's models.

A benchmark against a peer with a different architecture would compare nothing; counting
trainable parameters and batch-norm statistics separately catches a wrong filter count, a
missing bias or a batch norm with or without scale. No timing here.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.specs import SPECS
from jaxvision.models import build_model


def jaxvision_counts(name):
    spec = SPECS[name]
    model = build_model(spec.jaxvision_name, **spec.kwargs)
    x = jnp.zeros((1, *spec.input_shape), jnp.float32)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    count = lambda tree: int(sum(np.prod(a.shape) for a in jax.tree.leaves(tree)))
    return count(shapes["params"]), count(shapes.get("batch_stats", {}))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_torch_peer_has_jaxvisions_parameter_counts(name):
    torch = pytest.importorskip("torch")
    from benchmarks import peers_torch

    model = peers_torch.build(SPECS[name])
    params = sum(p.numel() for p in model.parameters())
    params_and_stats = model.state_dict()  # persistent buffers only: no constants
    stats = sum(
        v.numel() for k, v in params_and_stats.items() if v.dtype == torch.float32 and k.endswith(("mean", "var"))
    )
    assert (params, stats) == jaxvision_counts(name)


@pytest.mark.parametrize("name", ["autoencoder", "segmenter", "deep_cnn"])  # InceptionV3 is
def test_keras_peer_has_jaxvisions_parameter_counts(name):  # keras.applications'
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the benchmark runs Keras on the JAX backend")
    from benchmarks import peers_keras

    model = peers_keras.build(SPECS[name])
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    stats = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (trainable, stats) == jaxvision_counts(name)
