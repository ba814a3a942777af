"""Paper B's models: shapes and parameter counts (the paper's where it gives them), gradients,
dropout and batch norm only in training, freezing, L2 kernels and the model registry.

Counts and shapes at the papers' input sizes come from `jax.eval_shape`; compiled checks run
on small inputs (the networks are fully convolutional up to their heads).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.models import (
    AUTOENCODER_FILTERS,
    MODELS,
    ConvAutoencoder,
    DeepCNN,
    EncoderClassifier,
    Segmenter,
    UNet,
    autoencoder,
    build_model,
    code_size,
    count_params,
    l2_mask,
    masked_optimizer,
    trainable_mask,
)

KEY = jax.random.PRNGKey(0)


def shapes(model, shape):
    return jax.eval_shape(model.init, KEY, jnp.zeros(shape))


def host_init(model, shape, seed=0):
    """Variables with the model's shapes, filled on the host (no compiled initialisers)."""
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = path[-1].key
        if name == "kernel":
            return jnp.asarray(rng.normal(0, np.sqrt(2 / np.prod(s.shape[:-1])), s.shape), jnp.float32)
        if name in ("scale", "var"):
            return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), jnp.float32)
        return jnp.asarray(rng.normal(0, 0.05, s.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes(model, shape))


def images(shape, seed=1):
    return jax.random.uniform(jax.random.PRNGKey(seed), shape)


def leaf_names(tree, keep=lambda x: True):
    return [jax.tree_util.keystr(p) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0] if keep(x)]


# ---------------------------------------------------------------------------- autoencoders

AE_PARAMS = {2048: 800_491, 4096: 798_163, 8192: 788_899}


@pytest.mark.parametrize("size", [2048, 4096, 8192])
def test_autoencoder_variants(size):
    model = autoencoder(size)
    assert model.filters == AUTOENCODER_FILTERS[size] and code_size(model.filters) == size
    v = shapes(model, (1, 128, 128, 3))
    assert count_params(v) == AE_PARAMS[size]
    code = jax.eval_shape(lambda v, x: model.apply(v, x, method="encode"), v, jnp.zeros((2, 128, 128, 3)))
    assert code.shape == (2, 16, 16, model.filters[-1]) and np.prod(code.shape[1:]) == size
    out = jax.eval_shape(model.apply, v, jnp.zeros((2, 128, 128, 3)))
    assert out.shape == (2, 128, 128, 3)
    # mirrored decoder: reversed encoder filters without the last, then 3 output channels
    dec = v["params"]["decoder"]
    widths = [dec[f"conv_{j}"]["kernel"].shape[-1] for j in range(len(model.filters))]
    assert widths == list(reversed(model.filters[:-1])) + [3]
    assert list(AUTOENCODER_FILTERS[2048]) == [256, 128, 64, 32, 16, 8]  # the paper's list
    assert widths[:-1] == [16, 32, 64, 128, 256] or size != 2048  # the paper's decoder


def test_the_8192_encoder_has_the_papers_count():
    v = shapes(autoencoder(8192), (1, 128, 128, 3))
    assert count_params(v["params"]["encoder"]) == 394_464  # 7,168 + 295,040 + 73,792 + 18,464


def test_autoencoder_encode_decode_and_sigmoid_output():
    model = autoencoder(2048)
    x = images((2, 32, 32, 3))
    v = host_init(model, x.shape)
    z, y, y2 = jax.jit(
        lambda v, x: (
            model.apply(v, x, method="encode"),
            model.apply(v, x),
            model.apply(v, model.apply(v, x, method="encode"), method="decode"),
        )
    )(v, x)
    assert z.shape == (2, 4, 4, 8)
    np.testing.assert_allclose(y, y2, rtol=1e-6)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(ValueError, match="pools"):
        shapes(ConvAutoencoder(filters=(8, 4), pools=2), (1, 32, 32, 3))
    with pytest.raises(ValueError, match="code_size"):
        autoencoder(1000)


# ----------------------------------------------------------------------------- classifiers


def test_encoder_classifiers_have_the_papers_counts():
    frozen, scratch = build_model("frozen_encoder_classifier"), build_model("encoder_classifier")
    v = shapes(frozen, (1, 128, 128, 3))
    assert count_params(v) == 419_043
    trainable = lambda m: sum(
        int(np.prod(p.shape))
        for p, t in zip(jax.tree.leaves(v["params"]), jax.tree.leaves(trainable_mask(m, v["params"])))
        if t
    )
    assert trainable(frozen) == 24_579  # paper: frozen encoder + dense
    assert trainable(scratch) == 419_043  # paper: encoder from scratch
    # the classifier's encoder is the autoencoder's: its weights drop in unchanged
    ae = shapes(autoencoder(8192), (1, 128, 128, 3))["params"]["encoder"]
    assert jax.tree.map(lambda s: s.shape, ae) == jax.tree.map(lambda s: s.shape, v["params"]["encoder"])
    out = jax.eval_shape(frozen.apply, v, jnp.zeros((4, 128, 128, 3)))
    assert out.shape == (4, 3)


def test_deep_cnn_counts_and_shapes():
    model = DeepCNN()
    v = shapes(model, (1, 128, 128, 3))
    assert count_params(v["params"]) == 992_259 and count_params(v["batch_stats"]) == 1_472
    out = jax.eval_shape(lambda v, x: model.apply(v, x), v, jnp.zeros((4, 128, 128, 3)))
    assert out.shape == (4, 3)
    assert v["params"]["head"]["kernel"].shape == (4 * 4 * 256, 3)


def test_deep_cnn_l2_kernels():
    model = DeepCNN()
    v = shapes(model, (1, 32, 32, 3))
    assert model.l2_kernel_paths() == (("conv_2", "kernel"), ("conv_3", "kernel"), ("conv_4", "kernel"))
    assert leaf_names(l2_mask(model, v["params"]), bool) == [
        "['conv_2']['kernel']",
        "['conv_3']['kernel']",
        "['conv_4']['kernel']",
    ]
    # a model that names no kernels: every kernel, no bias
    segmenter = l2_mask(Segmenter(), shapes(Segmenter(), (1, 16, 16, 1))["params"])
    chosen = leaf_names(segmenter, bool)
    assert chosen and all(name.endswith("['kernel']") for name in chosen)
    assert len(chosen) == len([p for p in jax.tree_util.tree_leaves_with_path(segmenter) if "kernel" in str(p[0][-1])])
    with pytest.raises(ValueError, match="l2_blocks"):
        DeepCNN(l2_blocks=(5,)).l2_kernel_paths()


# ------------------------------------------------------------------------------ segmenters


@pytest.mark.parametrize("cls,count", [(Segmenter, 492_609), (UNet, 679_233)])
def test_segmenter_counts_and_shapes(cls, count):
    model = cls()
    v = shapes(model, (1, 64, 64, 1))
    assert count_params(v) == count
    out = jax.eval_shape(lambda v, x: model.apply(v, x), v, jnp.zeros((3, 64, 64, 1)))
    assert out.shape == (3, 64, 64, 1)  # one channel of logits
    enc = [v["params"][f"encoder_conv_{i}"]["kernel"].shape[-1] for i in range(4)]
    dec = [v["params"][f"decoder_conv_{j}"]["kernel"].shape[-1] for j in range(3)]
    assert enc == [256, 128, 64, 32] and dec == [32, 64, 128]
    assert v["params"]["logits"]["kernel"].shape[-1] == 1
    with pytest.raises(ValueError, match="multiples of 8"):
        shapes(model, (1, 60, 60, 1))


# ------------------------------------------------------------------------ behaviour (compiled)

SMALL = {
    "autoencoder_2048": (autoencoder(2048), (2, 32, 32, 3)),
    "autoencoder_4096": (autoencoder(4096), (2, 32, 32, 3)),
    "autoencoder_8192": (autoencoder(8192), (2, 32, 32, 3)),
    "encoder_classifier": (EncoderClassifier(), (2, 32, 32, 3)),
    "deep_cnn": (DeepCNN(), (2, 32, 32, 3)),
    "segmenter": (Segmenter(), (2, 16, 16, 1)),
    "unet": (UNet(), (2, 16, 16, 1)),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gradients_reach_every_trainable_parameter(name):
    model, shape = SMALL[name]
    v = host_init(model, shape)
    x = images(shape)
    params, rest = v["params"], {k: c for k, c in v.items() if k != "params"}

    @jax.jit
    def grads(params):
        def loss(p):
            y, _ = model.apply(
                {"params": p, **rest}, x, train=True, mutable=list(rest), rngs={"dropout": jax.random.PRNGKey(2)}
            )
            return jnp.mean((y - 0.3) ** 2)

        return jax.grad(loss)(params)

    g = grads(params)
    dead = leaf_names(jax.tree.map(lambda a: float(jnp.abs(a).max()), g), lambda n: not n > 0)
    assert not dead, f"no gradient reaches {dead}"


@pytest.mark.parametrize("name", ["deep_cnn", "segmenter", "unet"])
def test_dropout_only_in_training(name):
    model, shape = SMALL[name]
    v = host_init(model, shape)
    x = images(shape)
    rest = {k: c for k, c in v.items() if k != "params"}
    train = jax.jit(lambda x, key: model.apply(v, x, train=True, rngs={"dropout": key}, mutable=list(rest))[0])
    evaluate = jax.jit(lambda x: model.apply(v, x, train=False))  # needs no dropout rng
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    np.testing.assert_array_equal(evaluate(x), evaluate(x))  # eval: deterministic
    np.testing.assert_array_equal(train(x, k1), train(x, k1))  # same key, same mask
    assert not np.allclose(train(x, k1), train(x, k2))  # train: dropout
    assert not np.allclose(train(x, k1), evaluate(x))


def test_batch_norm_statistics_update_only_in_training():
    model, shape = SMALL["deep_cnn"]
    v = host_init(model, shape)
    x = images(shape)
    apply = jax.jit(
        lambda v, train: model.apply(v, x, train=train, mutable=["batch_stats"], rngs={"dropout": KEY}),
        static_argnums=1,
    )
    _, trained = apply(v, True)
    _, evaluated = apply(v, False)
    for new, old in zip(jax.tree.leaves(trained["batch_stats"]), jax.tree.leaves(v["batch_stats"])):
        assert bool(jnp.all(new != old))
    for new, old in zip(jax.tree.leaves(evaluated["batch_stats"]), jax.tree.leaves(v["batch_stats"])):
        np.testing.assert_array_equal(new, old)
    # momentum 0.99 on the first layer's mean
    z = jax.lax.conv_general_dilated(
        x, v["params"]["conv_0"]["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    z = z + v["params"]["conv_0"]["bias"]
    np.testing.assert_allclose(
        trained["batch_stats"]["bn_0"]["mean"],
        0.99 * v["batch_stats"]["bn_0"]["mean"] + 0.01 * z.mean((0, 1, 2)),
        rtol=1e-4,
        atol=1e-6,
    )


def test_frozen_encoder_step_changes_only_the_head():
    model = build_model("frozen_encoder_classifier")
    shape = (4, 32, 32, 3)
    params = host_init(model, shape)["params"]
    x, labels = images(shape), jnp.array([[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 1, 0]], jnp.float32)
    mask = trainable_mask(model, params)
    assert leaf_names(mask, bool) == ["['head']['bias']", "['head']['kernel']"]
    tx = masked_optimizer(optax.rmsprop(1e-2), mask)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss(p):
            return jnp.mean(optax.sigmoid_binary_cross_entropy(model.apply({"params": p}, x), labels))

        g = jax.grad(loss)(params)
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    new, _ = step(params, opt_state)
    for a, b in zip(jax.tree.leaves(new["encoder"]), jax.tree.leaves(params["encoder"])):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(new["head"]["kernel"], params["head"]["kernel"])


def test_real_init_uses_keras_initialisers():
    model = EncoderClassifier(filters=(8,), pools=0)
    v = model.init(KEY, jnp.zeros((1, 4, 4, 3)))["params"]
    kernel = v["encoder"]["conv_0"]["kernel"]  # 3x3x3x8, Glorot uniform
    limit = np.sqrt(6 / (9 * 3 + 9 * 8))
    assert 0 < float(jnp.abs(kernel).max()) <= limit
    assert not jnp.any(v["encoder"]["conv_0"]["bias"])


# ---------------------------------------------------------------------------- registry, mask


def test_build_model_registry():
    expected = {
        "inception_v3": "InceptionV3",
        "autoencoder": "ConvAutoencoder",
        "frozen_encoder_classifier": "EncoderClassifier",
        "encoder_classifier": "EncoderClassifier",
        "deep_cnn": "DeepCNN",
        "segmenter": "Segmenter",
        "unet": "UNet",
        "inception_segmenter": "InceptionSegmenter",
    }
    assert set(MODELS) == set(expected)
    for name, cls in expected.items():
        assert type(build_model(name)).__name__ == cls
    assert build_model("frozen_encoder_classifier").freeze_backbone
    assert not build_model("encoder_classifier").freeze_backbone
    assert build_model("autoencoder", code_size=4096).filters == (256, 128, 64, 32, 16)
    assert build_model("deep_cnn", filters=[8, 8, 8, 8, 8]).filters == (8, 8, 8, 8, 8)
    with pytest.raises(ValueError, match="Unknown model"):
        build_model("resnet")
    with pytest.raises(ValueError, match="does not take"):
        build_model("segmenter", colour=True)


def test_trainable_mask_overrides():
    model = DeepCNN()
    params = shapes(model, (1, 32, 32, 3))["params"]
    assert all(jax.tree.leaves(trainable_mask(model, params)))
    mask = trainable_mask(model, params, trainable=["head", "conv_4/"])
    assert leaf_names(mask, bool) == [
        "['conv_4']['bias']",
        "['conv_4']['kernel']",
        "['head']['bias']",
        "['head']['kernel']",
    ]
    mask = trainable_mask(model, params, trainable=lambda path: path.endswith("kernel"))
    assert len(leaf_names(mask, bool)) == 6
