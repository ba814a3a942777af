"""Quickstart: paper B's whole pipeline on the embedded dataset, in about 10 minutes on 2 CPU cores.

    ./launch.sh                                        # = this file, workdir runs/quickstart
    ./launch.sh experiments/quickstart.py --workdir DIR

Runs, one after the other (each in its own sub-workdir, with a progress bar): the three
autoencoders of Table 1 and PCA with as many components as their codes; the classifiers of
Table 2 (the frozen encoder starts from the trained 8192-code autoencoder); the segmenter of
Table 3 trained with BCE and with Dice loss. Then it writes DIR/report.md: the tables with the
paper's numbers beside ours, reconstructions by every autoencoder and PCA, segmentation
overlays, and the training curves. A run that is stopped resumes where it was.

Everything but the optimizers and losses is scaled down to fit the time, on the embedded
'shapes' dataset (offline; objects of the classes cat / motorbike / bottle on cluttered
backgrounds, drawn at 64x64) instead of PASCAL VOC:
  * autoencoders and classifiers see 32x32 RGB images (128x128 in the paper), so the
    networks of the paper's 2048 / 4096 / 8192 codes give 128 / 256 / 512 codes (the same
    layers on 1/16 of the pixels); PCA keeps 128 / 256 / 512 components;
  * segmentation is at the paper's 64x64 grayscale, with a quarter of its filters;
  * 800 training and 200 validation images; 6-20 epochs instead of 40-100, in batches of 8
    instead of 32 so that they still make 600-2,000 steps (paper B's autoencoders took 1,260).
The paper's numbers stand beside ours for orientation: the data and the scale differ. The
papers' own settings are in experiments/voc_*.py.

Measured 2026-11-22: 9.0 minutes wall clock on 2 CPU cores with nothing else running (11.6
minutes of user and 1.9 of system CPU time, 1.7 GB peak memory). The tables it wrote are in
docs/results.md and in the docstrings of experiments/voc_*.py.
"""

import os

import ml_collections

from jaxvision.main import load_config
from jaxvision.models import AUTOENCODER_FILTERS, code_size

VARIANTS = ()  # one configuration: get_config() takes no variant
HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 32  # autoencoders and classifiers
SEGMENTATION_SIZE = 64
DRAWN_AT = 64
EXAMPLES = dict(num_train=800, num_validation=200, num_test=200)
BATCH = 8  # a quarter of the paper's 32: four times the steps for the same work
EPOCHS = {"ae": 6, "frozen_encoder": 6, "encoder": 6, "deep_cnn": 20, "segmentation": 12}
SEGMENTER_FILTERS = (64, 32, 16, 8)  # the paper's (256, 128, 64, 32) divided by 4
_CODES = (2048, 4096, 8192)
_AE_FILTERS = [AUTOENCODER_FILTERS[c] for c in _CODES]
NOTES = (
    "Paper B's pipeline at quickstart scale, on the embedded 'shapes' dataset (not VOC): 32x32 RGB for the "
    "autoencoders and classifiers (128x128 in the paper, so the paper's 2048 / 4096 / 8192-code networks give "
    "128 / 256 / 512 codes), 64x64 grayscale with a quarter of the filters for segmentation, 800 training and "
    "200 validation images, 6-20 epochs in batches of 8 (32 in the paper). The optimizers and losses are the "
    "paper's. The paper's numbers are beside ours for orientation only: the data and the scale differ.",
)


def _shapes(data: ml_collections.ConfigDict, size: int) -> None:
    data.name = "shapes"
    data.image_size = size
    data.shapes.update(dict(image_size=DRAWN_AT, label="multi_hot", **EXAMPLES))


def _scale(name: str, run: ml_collections.ConfigDict) -> None:
    if run.get("kind") == "pca":
        _shapes(run.data, SIZE)
        codes = [code_size(f, input_shape=(SIZE, SIZE, 3)) for f in _AE_FILTERS]
        run.components = tuple(codes)
        return
    run.batch_size = BATCH
    run.eval_batch_size = 50  # 200 validation images in 4 batches
    if run.task == "segmentation":
        _shapes(run.data, SEGMENTATION_SIZE)
        run.model.filters = SEGMENTER_FILTERS
        run.num_epochs = EPOCHS["segmentation"]
        return
    _shapes(run.data, SIZE)
    if run.task == "reconstruction":
        codes = code_size(_AE_FILTERS[_CODES.index(run.model.code_size)], input_shape=(SIZE, SIZE, 3))
        run.report.row = f"autoencoder of the {run.model.code_size}-code net: {codes} codes at {SIZE}x{SIZE}"
        run.report.label = f"AE, {codes} codes"
        run.num_epochs = EPOCHS["ae"]
        return
    run.num_epochs = EPOCHS[name]
    if name == "deep_cnn":
        run.early_stopping.patience = 5


def get_config() -> ml_collections.ConfigDict:
    tables = [load_config(os.path.join(HERE, spec)) for spec in
              ("voc_autoencoder.py:table1", "voc_classifier.py:table2", "voc_segmentation.py:table3")]
    config = ml_collections.ConfigDict()
    config.suite = ml_collections.ConfigDict(dict(
        title="Quickstart: paper B on the embedded dataset", order=(), notes=NOTES))
    config.runs = ml_collections.ConfigDict()
    order = []
    for table in tables:
        for name in table.suite.order:
            if name in order or name == "unet_dice":  # ae_8192 is in two tables; U-Net: see voc_segmentation.py
                continue
            order.append(name)
            run = ml_collections.ConfigDict(table.runs[name])
            _scale(name, run)
            config.runs[name] = run
    config.suite.order = tuple(order)
    return config
