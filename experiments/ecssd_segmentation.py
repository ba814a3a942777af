"""Paper B's Table 3 on real photos: the 64x64 grayscale segmenter, BCE against Dice loss, on ECSSD.

    ./launch.sh experiments/ecssd_segmentation.py:table3      # baselines and every run below + claims
    ./launch.sh experiments/ecssd_segmentation.py:dice        # one run (also bce, unet_dice, pretrained)

No PASCAL VOC masks can be had offline; ../shared/data/ecssd holds 500 photos of the Extended
Complex Scene Saliency Dataset with their salient-object masks (elsewhere, point
--config.data.masks.root at any folder of images/ and masks/, see jaxvision/data/mask_folder.py).
VOC's foreground masks and ECSSD's salient-object masks are both "object against background",
the task of Table 3.

Paper B's settings throughout (experiments/voc_segmentation.py): 64x64 grayscale, the
encoder-decoder of 256, 128, 64, 32 filters with dropout 0.5, Adam at 1e-3, 40 epochs, batch
32, BCE or 1 - Dice. The 500 pairs are split once, by a seeded permutation, into 400 for
training and 100 held out; nothing is chosen on the held-out photos (no run monitors them, and
the reported numbers are those after epoch 40). Beside the segmenters, two baselines scored by
the same code on the same 100 photos (jaxvision/baselines.py): every pixel foreground, and the
mean training mask thresholded at its best value on the training masks (a centre prior: objects
sit near the middle of these photos). Dice and IoU are counted over every pixel of the held-out
photos (global) and averaged per photo.

Ours beside the paper's runs: `unet_dice`, the same segmenter with U-Net skips, and
`pretrained`, paper B's future work applied to masks: the ImageNet InceptionV3 of paper A
(`config.init.imagenet='auto'`, jaxvision/weights/pretrained.py) as the encoder of the 64x64 photos in
colour (resized to 139x139 inside the model), a small decoder, Dice loss, the encoder at a tenth
of the decoder's learning rate with its batch norm frozen, 20 epochs (the backbone costs a CPU
more than the paper's segmenter).

Measured results: docs/results.md.
"""

import functools
import os
import runpy
import types

import ml_collections

from jaxvision.configs import load_config

HERE = os.path.dirname(os.path.abspath(__file__))
common = types.SimpleNamespace(**runpy.run_path(os.path.join(HERE, "_common.py")))
ECSSD = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "ecssd"))
RUNS = ("bce", "dice", "unet_dice", "pretrained")
PRETRAINED_EPOCHS = 20
VARIANTS = RUNS + ("table3",)
TABLE = "Paper B, Table 3 on ECSSD: segmentation of 100 held-out photos"
COLUMNS = (
    ("Dice", "validation/dice", "paper_dice"),
    ("IoU", "validation/iou", "paper_iou"),
    ("Dice, mean per photo", "validation/dice_per_image", None),
    ("IoU, mean per photo", "validation/iou_per_image", None),
    ("pixel accuracy", "validation/pixel_accuracy", None),
)


def _data(data: ml_collections.ConfigDict) -> None:
    data.name = "mask_folder"
    data.masks.root = ECSSD
    data.masks.split = (0.8, 0.2)
    data.train_split = "train"
    data.eval_splits = ("validation",)


def pretrained() -> ml_collections.ConfigDict:
    """InceptionV3's ImageNet encoder with a small decoder (jaxvision/models/inception_segmenter.py)."""
    config = load_config(os.path.join(HERE, "voc_segmentation.py:dice"))
    config.data.grayscale = False  # the encoder was trained on colour photos
    config.data.value_range = (-1.0, 1.0)
    config.model = ml_collections.ConfigDict(dict(name="inception_segmenter", backbone_size=139))
    config.init = ml_collections.ConfigDict(dict(imagenet="auto"))
    config.optimizer.backbone_lr_scale = 0.1
    config.num_epochs = PRETRAINED_EPOCHS
    config.report.row = "ImageNet InceptionV3 encoder + decoder, Dice loss, 64x64 RGB (ours, paper B's future work)"
    config.report.label = "ImageNet encoder"
    return config


def segmentation(variant: str) -> ml_collections.ConfigDict:
    config = (
        pretrained() if variant == "pretrained" else load_config(os.path.join(HERE, f"voc_segmentation.py:{variant}"))
    )
    _data(config.data)
    # the paper's Dice and IoU of this loss (none for our own runs)
    paper = {} if variant == "pretrained" else {c[0]: c[2] for c in config.report.columns}
    config.report.table = TABLE
    config.report.columns = tuple((name, source, paper.get(name) if key else None) for name, source, key in COLUMNS)
    return config


def _prior() -> ml_collections.ConfigDict:
    config = segmentation("dice")
    report = dict(table=TABLE, columns=config.report.columns, row="baselines: all foreground; the mean training mask")
    return ml_collections.ConfigDict(
        dict(kind="prior", task="segmentation", loss=config.loss, data=config.data, split="validation", report=report)
    )


def _claim(text: str, left: tuple, right: tuple) -> dict:
    return dict(text=text, left=left, op=">", right=right)


def table3() -> ml_collections.ConfigDict:
    notes = (
        "500 ECSSD photos with salient-object masks: 400 for training, 100 held out; paper B's segmenter "
        "at its own settings (64x64 grayscale, 40 epochs, batch 32, Adam). The paper's numbers are for VOC "
        "2009; the baselines learn nothing from the pixels.",
    )
    runs = {v: segmentation(v) for v in RUNS}
    title = "Paper B, Table 3 on real photos (ECSSD): BCE against Dice loss"
    config = common.suite(title, dict(runs, prior=_prior()), order=("prior",) + RUNS, notes=notes)
    prior_dice, prior_iou = ("prior", "prior/validation/dice"), ("prior", "prior/validation/iou")
    config.suite.claims = (
        _claim(
            "Dice loss beats BCE on Dice (Table 3: 0.68 against 0.55)",
            ("dice", "validation/dice"),
            ("bce", "validation/dice"),
        ),
        _claim(
            "Dice loss beats BCE on IoU (Table 3: 0.54 against 0.39)",
            ("dice", "validation/iou"),
            ("bce", "validation/iou"),
        ),
        _claim("the BCE segmenter beats the centre prior on Dice", ("bce", "validation/dice"), prior_dice),
        _claim("the Dice-loss segmenter beats the centre prior on Dice", ("dice", "validation/dice"), prior_dice),
        _claim("the Dice-loss segmenter beats the centre prior on IoU", ("dice", "validation/iou"), prior_iou),
        _claim(
            "paper B's future work: ImageNet-pretrained features beat its own segmenter on Dice",
            ("pretrained", "validation/dice"),
            ("dice", "validation/dice"),
        ),
    )
    return config


def get_config(variant: str = "dice") -> ml_collections.ConfigDict:
    builders = {**{v: functools.partial(segmentation, v) for v in RUNS}, "table3": table3}
    return common.variant_config(__file__, variant, builders)
