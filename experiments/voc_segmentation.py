"""Paper B, Table 3: binary foreground segmentation at 64x64 grayscale, BCE against Dice loss.

    ./launch.sh experiments/voc_segmentation.py:bce
    ./launch.sh experiments/voc_segmentation.py:dice
    ./launch.sh experiments/voc_segmentation.py:unet_dice   # ours: the same net with skips
    ./launch.sh experiments/voc_segmentation.py:table3      # all three, one results.md

Paper B's settings: the 1,499 VOC 2009 images with segmentation masks, split 749 / 750 (VOC's
own train / val lists), every class kept as foreground, resized to 64x64 and converted to
grayscale; encoder-decoder of 256, 128, 64, 32 filters with dropout 0.5 (docs/models.md);
Adam (Keras' defaults, learning rate 1e-3), 40 epochs, batch 32; the loss is BCE or
1 - Dice. Dice = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN), counted over every
pixel of the validation split, the prediction thresholded at 0.5.

Paper: Dice 0.55 / 0.68 and IoU 0.39 / 0.54 for BCE / Dice loss. Ours, on the embedded
dataset at quickstart scale and on 500 real ECSSD photos (experiments/ecssd_segmentation.py),
with the paper's numbers beside them: docs/results.md. VOC itself: run this file (tfds
downloads the VOC 2009 tar once, or give --config.data.voc.manual_dir=DIR holding
VOCdevkit/VOC2009 or the tar).
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
TABLE = "Paper B, Table 3: segmentation of the validation images"
RUNS = {
    "bce": dict(
        row="binary cross-entropy",
        label="BCE",
        model="segmenter",
        loss="binary_cross_entropy",
        paper=dict(dice=0.55, iou=0.39),
    ),
    "dice": dict(row="Dice loss", label="Dice", model="segmenter", loss="dice", paper=dict(dice=0.68, iou=0.54)),
    "unet_dice": dict(
        row="U-Net, Dice loss (ours, not in the paper)",
        label="U-Net, Dice",
        model="unet",
        loss="dice",
        paper=dict(dice=None, iou=None),
    ),
}
VARIANTS = (*RUNS, "table3")


def segmentation(variant: str) -> ml_collections.ConfigDict:
    run = RUNS[variant]
    config = train.default_config()  # batch 32, seed 0
    config.num_epochs = 40
    config.task = "segmentation"
    config.loss = run["loss"]
    config.data = default_data_config()
    config.data.name = "voc_segmentation"
    config.data.voc.year = 2009
    config.data.image_size = 64
    config.data.grayscale = True
    config.data.random_flip = False  # the paper names no augmentation
    config.model = ml_collections.ConfigDict(dict(name=run["model"], dropout=0.5))
    config.optimizer.update(name="adam", learning_rate=1e-3)
    config.monitor.update(metric="", mode="max")  # the paper reports epoch 40
    columns = (
        ("Dice", "validation/dice", run["paper"]["dice"]),
        ("IoU", "validation/iou", run["paper"]["iou"]),
        ("pixel accuracy", "validation/pixel_accuracy", None),
    )
    config.report = ml_collections.ConfigDict(
        dict(table=TABLE, columns=columns, row=run["row"], curves=("loss", "dice"))
    )
    config.report.label = run["label"]
    return config


def table3() -> ml_collections.ConfigDict:
    runs = {v: segmentation(v) for v in RUNS}
    return common.suite("Paper B, Table 3: segmentation, BCE against Dice loss", runs)


def get_config(variant: str = "dice") -> ml_collections.ConfigDict:
    builders = {**{v: functools.partial(segmentation, v) for v in RUNS}, "table3": table3}
    return common.variant_config(__file__, variant, builders)
