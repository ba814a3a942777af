"""Paper B, Table 1: the convolutional autoencoder at 2048 / 4096 / 8192 codes, against PCA.

    ./launch.sh experiments/voc_autoencoder.py:code2048        # one autoencoder, MSE loss
    ./launch.sh experiments/voc_autoencoder.py:code8192_mae    # ... trained on MAE instead
    ./launch.sh experiments/voc_autoencoder.py:table1          # all three + PCA, one results.md

Paper B's settings: PASCAL VOC 2009 images holding a cat, a motorbike or a bottle (657 train,
644 validation in the paper; our builder keeps every VOC 2009 train / val image with one of
them), 128x128 RGB in [0, 1], RMSprop (Keras' defaults: learning rate 1e-3, rho 0.9), 60 epochs,
batch 32, MSE loss (MAE "almost equal"). The filter lists behind each code size are in
docs/models.md. PCA is fitted on the same training images and keeps as many components as the
codes (at most one fewer than the training images, see jaxvision/pca.py).

Paper: MSE 0.04 / 0.02 / 0.01, MAE 0.15 / 0.10 / 0.08 for the 2048 / 4096 / 8192 nets. Ours,
on the embedded dataset at quickstart scale (VOC cannot be downloaded on our machines), with
the paper's number beside each: docs/results.md, copied there from the run's own files. VOC
itself: run this file (tfds downloads the VOC 2009 tar once, or give
--config.data.voc.manual_dir=DIR holding VOCdevkit/VOC2009 or the tar).
"""

import functools
import os
import runpy
import types

import ml_collections

from jaxvision import train
from jaxvision.data import default_data_config

HERE = os.path.dirname(os.path.abspath(__file__))
common = types.SimpleNamespace(**runpy.run_path(os.path.join(HERE, "_common.py")))
CODE_SIZES = (2048, 4096, 8192)
PAPER = {2048: dict(mse=0.04, mae=0.15), 4096: dict(mse=0.02, mae=0.10), 8192: dict(mse=0.01, mae=0.08)}
TABLE = "Paper B, Table 1: reconstruction error on the validation images"
LOSSES = {"": "mean_squared_error", "_mae": "mean_absolute_error"}
VARIANTS = tuple(f"code{c}{suffix}" for c in CODE_SIZES for suffix in LOSSES) + ("table1",)


def voc_images() -> ml_collections.ConfigDict:
    """Paper B's classification images: VOC 2009 with a cat, motorbike or bottle, 128x128 RGB."""
    data = default_data_config()
    data.name = "voc_multilabel"
    data.voc.year = 2009
    data.voc.classes = ("cat", "motorbike", "bottle")
    data.image_size = 128
    data.random_flip = False  # the paper names no augmentation
    return data


def _columns(code_size: int | None) -> tuple:
    paper = PAPER.get(code_size, dict(mse=None, mae=None))
    return (
        ("MSE", "validation/mean_squared_error", paper["mse"]),
        ("MAE", "validation/mean_absolute_error", paper["mae"]),
    )


def autoencoder(code_size: int, loss: str = "mean_squared_error") -> ml_collections.ConfigDict:
    """One autoencoder of Table 1, trained with `loss`."""
    mae = loss == "mean_absolute_error"
    config = train.default_config()  # batch 32, seed 0, monitor: the validation loss
    config.num_epochs = 60
    config.task = "reconstruction"
    config.loss = loss
    config.data = voc_images()
    config.model = ml_collections.ConfigDict(dict(name="autoencoder", code_size=code_size))
    config.optimizer.update(name="rmsprop", learning_rate=1e-3, rho=0.9, eps=1e-7)
    config.report = ml_collections.ConfigDict(
        dict(
            table=TABLE,
            columns=_columns(code_size),
            row=f"autoencoder, {code_size} codes" + (", MAE loss" if mae else ""),
            curves=("loss", "mean_squared_error" if mae else "mean_absolute_error"),
            label=f"AE {code_size}" + (" MAE" if mae else ""),
        )
    )
    return config


def pca(components=CODE_SIZES) -> ml_collections.ConfigDict:
    """PCA fitted on the training images, one table row per number of components."""
    config = train.default_config()  # the batch sizes it reads the images in: 32
    config.kind = "pca"
    config.data = voc_images()
    config.components = tuple(components)
    config.report = ml_collections.ConfigDict(dict(table=TABLE, columns=_columns(None), row="PCA"))
    return config


def table1() -> ml_collections.ConfigDict:
    """The three autoencoders and PCA, run one after the other, with one combined report."""
    runs = {f"ae_{c}": autoencoder(c) for c in CODE_SIZES}
    return common.suite("Paper B, Table 1: autoencoders against PCA", dict(runs, pca=pca()))


def get_config(variant: str = "code2048") -> ml_collections.ConfigDict:
    builders = {
        f"code{c}{suffix}": functools.partial(autoencoder, c, loss)
        for c in CODE_SIZES
        for suffix, loss in LOSSES.items()
    }
    return common.variant_config(__file__, variant, dict(builders, table1=table1))
