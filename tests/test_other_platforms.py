"""Off the CPU the models run XLA's and flax's own convolutions and pools.

The CPU kernels (models/cpu_conv.py, the pools of models/layers.py) sit behind
`lax.platform_dependent`; a GPU or TPU must get the program its measured runs had. Exported
here for those platforms (no accelerator needed), each model's training gradient is compared
op for op with the same model built on `lax.conv_general_dilated`, `nn.max_pool` and
`nn.avg_pool`.
"""

from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jnp
import pytest
from jax import export, lax

from benchmarks import alternatives
from jaxvision.models import build_model, inception_v3, layers

MODELS = [
    ("segmenter", {}, (1, 64, 64, 1)),
    ("deep_cnn", {}, (1, 64, 64, 3)),
    ("autoencoder", {}, (1, 64, 64, 3)),
    ("inception_v3", {"num_classes": 3}, (1, 75, 75, 3)),
]
# what lax.platform_dependent adds: a constant platform index and a one-branch `case` with
# its `return`s, which XLA inlines when it compiles for one platform
_SWITCH = {"stablehlo.case", "stablehlo.return", "stablehlo.constant"}


def _ops(name, kwargs, shape, platform):
    model = build_model(name, **kwargs)
    x = jnp.zeros(shape)
    variables = model.init(jax.random.key(0), x, train=False)

    def loss(params, x):
        out, _ = model.apply(
            {**variables, "params": params},
            x,
            train=True,
            rngs={"dropout": jax.random.key(1)},
            mutable=["batch_stats"],
        )
        return jnp.sum(out**2)

    text = export.export(jax.jit(jax.grad(loss)), platforms=[platform])(variables["params"], x).mlir_module()
    ops = collections.Counter(re.findall(r"\b(?:stablehlo|chlo)\.[a-z_]+", text))
    return {op: n for op, n in ops.items() if op not in _SWITCH}


def _plain_layers(monkeypatch):
    monkeypatch.setattr(layers, "conv_general_dilated", lax.conv_general_dilated)
    monkeypatch.setattr(inception_v3, "conv_general_dilated", lax.conv_general_dilated)
    monkeypatch.setattr(layers, "max_pool", alternatives.max_pool_reduce_window)
    monkeypatch.setattr(layers, "avg_pool3", alternatives.avg_pool3_reduce_window)


@pytest.mark.parametrize("name,kwargs,shape", MODELS, ids=[m[0] for m in MODELS])
def test_a_gpu_gets_xlas_own_convolutions_and_pools(name, kwargs, shape, monkeypatch):
    ours = _ops(name, kwargs, shape, "cuda")
    _plain_layers(monkeypatch)
    assert ours == _ops(name, kwargs, shape, "cuda")


def test_the_same_comparison_on_the_cpu_sees_its_kernels(monkeypatch):
    name, kwargs, shape = MODELS[0]
    ours = _ops(name, kwargs, shape, "cpu")
    _plain_layers(monkeypatch)
    plain = _ops(name, kwargs, shape, "cpu")
    # the 1-channel layers' passes as matmuls (models/cpu_conv.py)
    assert ours.get("stablehlo.dot_general", 0) > plain.get("stablehlo.dot_general", 0) == 0
    assert ours["stablehlo.convolution"] < plain["stablehlo.convolution"]


def test_a_tpu_gets_xlas_own_convolutions(monkeypatch):
    name, kwargs, shape = MODELS[2]
    ours = _ops(name, kwargs, shape, "tpu")
    _plain_layers(monkeypatch)
    assert ours == _ops(name, kwargs, shape, "tpu")
