"""Keras InceptionV3 -> Flax: parity with Keras itself, the three file layouts, and bad files.

Keras is built once per module with KERAS_BACKEND=jax (offline, `weights=None`), at 75x75
(Keras's minimum) with a 10-class top returning logits, and its weights are replaced by
deterministic random values, with non-trivial batch-norm statistics (beta ~ N(0, 0.2),
moving mean ~ N(0, 0.2), moving variance ~ U(0.5, 2)).

Parity tolerance: float32 on CPU, `assert_allclose(rtol=1e-4, atol=1e-4 * max|keras|)`;
observed differences are ~1e-6 relative.
"""

from __future__ import annotations

import os
import types

import h5py
import jax
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

from keras_reference import NUM_CLASSES, SIZE, build_keras, canonical_names, randomise, write_legacy_h5  # noqa: E402

from jaxvision.weights.convert import KERAS_LAYER_ORDER, WeightConversionError, load_inception_v3  # noqa: E402
from jaxvision.models import InceptionV3, count_params  # noqa: E402


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """One Keras model, its outputs on random inputs, and its weights in every layout."""
    tmp = tmp_path_factory.mktemp("keras_inception")
    km = build_keras(include_top=True)
    randomise(km)
    x = np.random.default_rng(1).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("f4")
    features = keras.Model(km.inputs, km.get_layer("mixed10").output)
    out = types.SimpleNamespace(
        km=km,
        x=x,
        canonical=canonical_names(km),
        logits=np.asarray(km.predict(x, verbose=0)),
        features=np.asarray(features.predict(x, verbose=0)),
        weights_h5=tmp / "inception.weights.h5",
        legacy=tmp / "legacy.h5",
        legacy_notop=tmp / "legacy_notop.h5",
        tmp=tmp,
    )
    km.save_weights(out.weights_h5)
    write_legacy_h5(out.legacy, km, include_top=True)
    write_legacy_h5(out.legacy_notop, km, include_top=False)
    return out


def _keras_values(ref) -> dict[tuple[str, ...], np.ndarray]:
    """{(collection, module, leaf): array} for every Keras weight, by our names."""
    out = {}
    for layer in ref.km.layers:
        if not layer.weights:
            continue
        name = ref.canonical[layer.name]
        for w in layer.weights:
            leaf = {
                "kernel": ("params", "kernel"),
                "bias": ("params", "bias"),
                "beta": ("params", "bias"),
                "moving_mean": ("batch_stats", "mean"),
                "moving_variance": ("batch_stats", "var"),
            }[w.name]
            out[(leaf[0], name, leaf[1])] = np.asarray(w)
    return out


def _flat(variables):
    return {tuple(p.key for p in path): np.asarray(v) for path, v in jax.tree_util.tree_flatten_with_path(variables)[0]}


_apply = jax.jit(lambda model, v, x: model.apply(v, x), static_argnums=0)


def test_layer_order_is_keras_model_layers_order(ref):
    ours = [ref.canonical[layer.name] for layer in ref.km.layers if layer.weights]
    assert ours == list(KERAS_LAYER_ORDER)
    assert len(KERAS_LAYER_ORDER) == 189 == len(set(KERAS_LAYER_ORDER))


def test_keras_parameter_count(ref):
    assert ref.km.count_params() == count_params(_keras_values(ref))
    model = InceptionV3(num_classes=NUM_CLASSES)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), np.zeros((1, SIZE, SIZE, 3)))
    assert count_params(shapes) == ref.km.count_params()


def test_parity_keras3_weights_h5_with_top(ref):
    model = InceptionV3(num_classes=NUM_CLASSES)
    variables, report = load_inception_v3(ref.weights_h5, model, return_report=True)
    assert report.source_format == "keras3-weights-h5"
    assert not report.initialised and not report.ignored_layers
    flat = _flat(variables)
    assert sorted(report.loaded) == sorted("/".join(k) for k in flat)  # each leaf once
    expected = _keras_values(ref)
    assert flat.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(flat[key], value, err_msg="/".join(key))
    logits = np.asarray(_apply(model, variables, ref.x))
    scale = np.abs(ref.logits).max()
    np.testing.assert_allclose(logits, ref.logits, rtol=1e-4, atol=1e-4 * scale)


def test_parity_legacy_h5_notop(ref):
    model = InceptionV3(include_top=False)
    variables, report = load_inception_v3(ref.legacy_notop, model, return_report=True)
    assert report.source_format == "legacy-h5"
    assert len(report.loaded) == len(_flat(variables)) == 94 + 3 * 94
    feats = np.asarray(_apply(model, variables, ref.x))
    assert feats.shape == ref.features.shape == (2, 1, 1, 2048)
    np.testing.assert_allclose(feats, ref.features, rtol=1e-4, atol=1e-4 * np.abs(ref.features).max())


def test_legacy_layout_is_the_one_keras_reads(ref):
    """Keras itself loads our hand-written legacy file into a fresh model, by layer order."""
    fresh = build_keras(include_top=True)
    fresh.load_weights(ref.legacy)
    for a, b in zip(fresh.weights, ref.km.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_legacy_with_top_matches_keras3_file(ref):
    model = InceptionV3(num_classes=NUM_CLASSES)
    a = _flat(load_inception_v3(ref.legacy, model))
    b = _flat(load_inception_v3(ref.weights_h5, model))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_keras_archive(ref):
    """A `.keras` archive is a zip whose `model.weights.h5` is a Keras 3 weights file."""
    import zipfile

    path = ref.tmp / "model.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("config.json", "{}")
        archive.write(ref.weights_h5, "model.weights.h5")
    model = InceptionV3(num_classes=NUM_CLASSES)
    a = _flat(load_inception_v3(path, model))
    b = _flat(load_inception_v3(ref.weights_h5, model))
    for key in b:
        np.testing.assert_array_equal(a[key], b[key])
    with zipfile.ZipFile(ref.tmp / "bad.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(WeightConversionError, match="without model.weights.h5"):
        load_inception_v3(ref.tmp / "bad.keras")


@pytest.mark.parametrize("source", ["weights_h5", "legacy_notop"])
def test_new_head_is_fresh_and_the_rest_loaded(ref, source):
    model = InceptionV3(num_classes=102)
    variables, report = load_inception_v3(getattr(ref, source), model, rng=jax.random.PRNGKey(3), return_report=True)
    flat = _flat(variables)
    assert sorted(report.initialised) == ["params/predictions/bias", "params/predictions/kernel"]
    assert sorted(report.loaded + report.initialised) == sorted("/".join(k) for k in flat)
    assert flat[("params", "predictions", "kernel")].shape == (2048, 102)
    assert not flat[("params", "predictions", "bias")].any()
    limit = np.sqrt(6 / (2048 + 102))  # Glorot-uniform
    kernel = flat[("params", "predictions", "kernel")]
    assert 0 < np.abs(kernel).max() <= limit
    for key, value in _keras_values(ref).items():
        if key[1] != "predictions":
            np.testing.assert_array_equal(flat[key], value)
    with pytest.raises(WeightConversionError, match="rng="):
        load_inception_v3(getattr(ref, source), model)


def test_top_file_into_notop_model_ignores_the_head(ref):
    variables, report = load_inception_v3(ref.weights_h5, InceptionV3(include_top=False), return_report=True)
    assert "predictions" not in variables["params"]
    assert report.ignored_layers == ["dense"] and not report.initialised


def _names(f) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]


def _copy_legacy(src, dst, edit):
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        for k, v in fin.attrs.items():
            fout.attrs[k] = v
        for k in fin:
            fin.copy(k, fout)
        edit(fout)


def test_legacy_variants_full_model_and_chunked_attributes(ref, tmp_path):
    """`model.save('x.h5')` files keep the layers under `model_weights`; Keras splits a long
    `layer_names` attribute into `layer_names0`, `layer_names1`, ..."""
    want = _flat(load_inception_v3(ref.legacy, InceptionV3(num_classes=NUM_CLASSES)))
    full = tmp_path / "full_model.h5"
    with h5py.File(ref.legacy, "r") as fin, h5py.File(full, "w") as fout:
        group = fout.create_group("model_weights")
        for k, v in fin.attrs.items():
            group.attrs[k] = v
        for k in fin:
            fin.copy(k, group)
        fout.attrs["model_config"] = b"{}"

    def chunk(f):
        names = _names(f)
        del f.attrs["layer_names"]
        for i in range(3):
            f.attrs[f"layer_names{i}"] = [n.encode() for n in names[i * 110 : (i + 1) * 110]]

    chunked = tmp_path / "chunked.h5"
    _copy_legacy(ref.legacy, chunked, chunk)
    for path in (full, chunked):
        got = _flat(load_inception_v3(path, InceptionV3(num_classes=NUM_CLASSES)))
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_bad_files_get_one_clear_error(ref, tmp_path):
    text = tmp_path / "not_hdf5.h5"
    text.write_text("hello")
    with pytest.raises(WeightConversionError, match="cannot be read as HDF5"):
        load_inception_v3(text)
    with pytest.raises(WeightConversionError, match="does not exist"):
        load_inception_v3(tmp_path / "missing.h5")

    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(WeightConversionError, match="neither a layer_names"):
        load_inception_v3(empty)

    # legacy file with one layer fewer
    def drop_last(f):
        f.attrs["layer_names"] = [n for n in _names(f) if n not in ("predictions", "batch_normalization_94")]

    short = tmp_path / "short.h5"
    _copy_legacy(ref.legacy, short, drop_last)
    with pytest.raises(WeightConversionError, match="layers with weights"):
        load_inception_v3(short)

    # legacy file with two layers swapped: caught by the shape check
    def swap(f):
        names = _names(f)
        i, j = names.index("conv2d_1"), names.index("conv2d_4")
        names[i], names[j] = names[j], names[i]
        f.attrs["layer_names"] = names

    swapped = tmp_path / "swapped.h5"
    _copy_legacy(ref.legacy, swapped, swap)
    with pytest.raises(WeightConversionError, match="shape"):
        load_inception_v3(swapped, InceptionV3(num_classes=NUM_CLASSES))

    # a legacy file whose layer list names a group that is not there
    def dangling(f):
        del f["conv2d_5"]

    damaged = tmp_path / "damaged.h5"
    _copy_legacy(ref.legacy, damaged, dangling)
    with pytest.raises(WeightConversionError, match="damaged or unexpected"):
        load_inception_v3(damaged)

    # a Keras 3 weights file of another model
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    other_path = tmp_path / "other.weights.h5"
    other.save_weights(other_path)
    with pytest.raises(WeightConversionError, match="Keras 3 weights file"):
        load_inception_v3(other_path)
