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

| loss          | paper Dice | paper IoU | ours Dice | ours IoU |
|---------------|------------|-----------|-----------|----------|
| BCE           | 0.55       | 0.39      | 0.0032    | 0.0016   |
| Dice          | 0.68       | 0.54      | 0.4548    | 0.2944   |

Ours: measured 2026-11-22 by `./launch.sh` (experiments/quickstart.py) on the embedded 'shapes'
dataset at quickstart scale (64x64 grayscale as in the paper, filters 64, 32, 16, 8, 800
training images, 12 epochs in batches of 8), not on VOC, which cannot be downloaded here.
Foreground is about 9% of the pixels: trained with BCE the segmenter still marks almost no
pixel after 1,200 steps (the paper's imbalance argument, in its extreme), with Dice loss it finds
the objects. VOC itself: run this file (tfds downloads the VOC 2009 tar once, or
give --config.data.voc.manual_dir=DIR holding VOCdevkit/VOC2009 or the tar).
"""

import ml_collections

from jaxvision.data import default_data_config

TABLE = "Paper B, Table 3: segmentation of the validation images"
# variant -> (row name, figure label, model, loss, paper's Dice, paper's IoU)
RUNS = {
    "bce": ("binary cross-entropy", "BCE", "segmenter", "binary_cross_entropy", 0.55, 0.39),
    "dice": ("Dice loss", "Dice", "segmenter", "dice", 0.68, 0.54),
    "unet_dice": ("U-Net, Dice loss (ours, not in the paper)", "U-Net, Dice", "unet", "dice", None, None),
}
VARIANTS = tuple(RUNS) + ("table3",)


def segmentation(variant: str) -> ml_collections.ConfigDict:
    row, label, model, loss, dice, iou = RUNS[variant]
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.batch_size = 32
    config.eval_batch_size = 32
    config.num_epochs = 40
    config.task = "segmentation"
    config.loss = loss
    config.data = default_data_config()
    config.data.name = "voc_segmentation"
    config.data.voc.year = 2009
    config.data.image_size = 64
    config.data.grayscale = True
    config.data.random_flip = False  # the paper names no augmentation
    config.model = ml_collections.ConfigDict(dict(name=model, dropout=0.5))
    config.optimizer = ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-3))
    config.monitor = ml_collections.ConfigDict(dict(metric="", mode="max"))  # the paper reports epoch 40
    config.report = ml_collections.ConfigDict(dict(
        table=TABLE,
        columns=(("Dice", "validation/dice", dice), ("IoU", "validation/iou", iou),
                 ("pixel accuracy", "validation/pixel_accuracy", None)),
        row=row,
        curves=("loss", "dice"),
        figure="segmentation",
        label=label,
    ))
    return config


def table3() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.suite = ml_collections.ConfigDict(dict(
        title="Paper B, Table 3: segmentation, BCE against Dice loss", order=tuple(RUNS), notes=()))
    config.runs = ml_collections.ConfigDict({v: segmentation(v) for v in RUNS})
    return config


def get_config(variant: str = "dice") -> ml_collections.ConfigDict:
    if variant == "table3":
        return table3()
    if variant not in RUNS:
        raise ValueError(f"Unknown variant {variant!r} of experiments/voc_segmentation.py: use one of "
                         f"{', '.join(VARIANTS)}.")
    return segmentation(variant)
