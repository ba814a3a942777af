"""Quickstart: paper B's whole pipeline on the embedded dataset, its claims checked, on 2 CPU cores.

    ./launch.sh                                        # = this file, workdir runs/quickstart
    ./launch.sh experiments/quickstart.py --workdir DIR [--config.seed=1]
    ./launch.sh experiments/quickstart.py:paper        # paper B's own settings (for an accelerator)

Runs (each in its own sub-workdir; on CPUs as many at once as there are cores, one core each,
their output in each sub-workdir's log.txt, see jaxvision/research/scheduled.py): the three
autoencoders of Table 1 and PCA with as many components as their codes; the baselines of the
classifiers (yes to every label; the most frequent label set); the classifiers of Table 2 (the
frozen encoder starts from the trained 8192-code autoencoder); paper B's proposed future work,
ImageNet-pretrained features (the frozen InceptionV3 of paper A, experiments/flowers_real.py)
with a dense sigmoid head; the segmenter of Table 3 trained with BCE and with Dice loss. Then
DIR/report.md: every ordering the paper reports, checked ✔ / ✘ from the runs' own numbers
(DIR/claims.md), the tables with the paper's numbers beside ours, reconstructions by every
autoencoder and PCA, segmentation overlays and the training curves. A stopped run resumes.

The embedded 'shapes' dataset (offline, deterministic: cats, motorbikes and bottles drawn on
textured backgrounds, jaxvision/data/shapes.py) stands in for PASCAL VOC. Departures from the
paper, all for time (the `paper` variant has none of them but the dataset):

* 64x64 images drawn at 64x64 (128x128 in the paper), so that the paper's networks keep their
  spatial structure (the autoencoders' three pools leave an 8x8 grid, as 16x16 at 128x128):
  for the autoencoders and classifiers objects of 20-45 % of the side on uncluttered
  backgrounds of a tenth of the default contrast, each class present in half the images (at
  full contrast the autoencoders, in their few epochs, spend their codes on the background, and
  a dense head on the frozen encoder's codes scored 0.22 exact match); for the segmenter smaller objects
  (15-35 %) on busier backgrounds, so that foreground is the minority of the pixels that
  motivates the Dice loss; 1,000 training, 300 validation and 100 test images;
* the autoencoders keep the paper's wiring and the last filters that set the code's depth
  (8 / 16 / 32, so 512 / 1,024 / 2,048 codes: the paper's 2,048 / 4,096 / 8,192 for a quarter
  of the pixels, the same fraction of each image) but start with fewer filters (64, 32, 32, 32
  instead of 256, 128, 64, 32);
* the deep CNN has filters (32, 64, 128, 128, 128) and stops early after 15 epochs without a
  better validation loss; the segmenter has a quarter of the paper's filters;
* fewer epochs (see EPOCHS) in batches of 16, but 300 for the frozen encoder's head, which
  trains on its codes, computed once (`cache_features`: the same numbers, faster; 100 epochs
  left it short of the overfitting the paper reports), an epoch's steps in one dispatch;
* the ImageNet run (paper B's future work) sees the 64x64 images upsampled to 139x139;
* the segmenters' learning rate decays along a cosine over their 12 epochs: at a constant rate
  their validation Dice still swings by a tenth between epochs, and the last epoch is the one
  reported (with seeds 1 and 2 the swings reversed Table 3's order).

The optimizers, losses, learning rates and everything else are the paper's. Nothing is chosen
on the test images; the deep CNN's early stopping watches the validation loss, as in the paper.
"""

import os

import ml_collections

from jaxvision.configs import load_config

VARIANTS = ("paper",)  # get_config() with no variant is the quickstart
HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 64
DATA = dict(
    image_size=SIZE,
    num_train=1000,
    num_validation=300,
    num_test=100,
    objects=(0.2, 0.45),
    clutter=0.0,
    presence=0.5,
    background=0.1,
)
# Segmentation: smaller objects on busier backgrounds, so that foreground is the minority that
# motivates the Dice loss (about a fifth of the pixels).
SEGMENTATION_DATA = dict(DATA, objects=(0.15, 0.35), clutter=0.25, background=1.0)
BATCH = 16
AE_FILTERS = {2048: (64, 32, 32, 32, 16, 8), 4096: (64, 32, 32, 32, 16), 8192: (64, 32, 32, 32)}
DEEP_CNN_FILTERS = (32, 64, 128, 128, 128)
SEGMENTER_FILTERS = (64, 32, 16, 8)  # the paper's (256, 128, 64, 32) divided by 4
EPOCHS = {"ae": 5, "frozen_encoder": 300, "encoder": 18, "deep_cnn": 25, "imagenet": 60, "segmentation": 12}
# The heads on cached features take an epoch's 62 steps in one dispatch (a scan on the devices):
# the same numbers, without a host round trip per step of a tiny dense layer.
HEAD_STEPS_PER_DISPATCH = 64
IMAGENET_SIZE = 139  # the drawn 64x64 images upsampled: at its smallest input, 75, InceptionV3 sees too little
TABLES = ("voc_autoencoder.py:table1", "voc_classifier.py:table2", "voc_segmentation.py:table3")
NOTES = {
    "": (
        "Paper B's pipeline on the embedded 'shapes' dataset (not VOC), scaled for 2 CPU cores: 64x64 images "
        "(for the autoencoders and classifiers on backgrounds of a tenth of the default contrast), "
        "autoencoders with the paper's wiring and code depths but fewer early filters (512 / 1,024 / 2,048 codes), "
        "a deep CNN with 128 filters in its last two blocks (256 by default), a segmenter of a quarter of the "
        "paper's filters, fewer epochs in batches of 16; the paper's optimizers, losses and learning rates. The "
        "paper's numbers are beside ours for orientation: the data and the scale differ; the claims are its "
        "orderings."
    ),
    "paper": "Paper B's own settings (128x128, its filters, epochs and batch 32) on the embedded 'shapes' dataset.",
}


def _shapes(data: ml_collections.ConfigDict, paper: bool) -> None:
    data.name = "shapes"
    drawn = SEGMENTATION_DATA if data.grayscale else DATA
    data.shapes.update(dict(drawn, image_size=128) if paper else drawn)
    data.shapes.label = "multi_hot"
    if not paper:
        data.image_size = SIZE


def _scale(name: str, run: ml_collections.ConfigDict) -> None:
    """The quickstart's departures from the paper, run by run."""
    run.batch_size, run.eval_batch_size = BATCH, 100
    if run.get("kind") == "pca":
        run.components = (512, 1024, 2048)
        return
    if run.task == "reconstruction":
        codes = {2048: 512, 4096: 1024, 8192: 2048}[run.model.code_size]
        run.model.filters = AE_FILTERS[run.model.code_size]
        run.report.row = f"autoencoder of the {run.model.code_size}-code net: {codes} codes at {SIZE}x{SIZE}"
        run.report.label = f"AE, {codes} codes"
        run.num_epochs = EPOCHS["ae"]
    elif run.task == "segmentation":
        run.model.filters = SEGMENTER_FILTERS
        run.num_epochs = EPOCHS["segmentation"]
        with run.optimizer.unlocked():
            run.optimizer.schedule = "cosine"  # the reported last epoch is not one of a constant rate's swings
    else:
        run.num_epochs = EPOCHS[name]
        if name in ("frozen_encoder", "encoder"):
            run.model.filters = AE_FILTERS[8192]
        if name == "frozen_encoder":
            run.cache_features = True  # its codes are computed once: many cheap epochs
            run.steps_per_dispatch = HEAD_STEPS_PER_DISPATCH
        if name == "deep_cnn":
            run.model.filters = DEEP_CNN_FILTERS
            run.early_stopping.patience = 15  # batch-norm statistics settle over the first epochs


def imagenet_features(paper: bool) -> ml_collections.ConfigDict:
    """Paper B's future work: ImageNet features (InceptionV3, frozen) + a dense sigmoid head."""
    run = load_config(os.path.join(HERE, "voc_classifier.py:encoder"))
    run.model = ml_collections.ConfigDict(dict(name="inception_v3", num_classes=3, freeze_backbone=True))
    run.init = ml_collections.ConfigDict(dict(imagenet="auto"))
    run.optional = True  # without ImageNet weights (offline, nothing cached) the suite goes on without it
    run.cache_features = True
    run.steps_per_dispatch = HEAD_STEPS_PER_DISPATCH
    run.data.image_size = 299 if paper else IMAGENET_SIZE
    run.data.value_range = (-1.0, 1.0)
    run.num_epochs = 100 if paper else EPOCHS["imagenet"]
    run.report.row = "ImageNet InceptionV3 features, frozen, + dense sigmoid head (paper B's future work)"
    run.report.columns = tuple((column, source, None) for column, source, _ in run.report.columns)  # not in the paper
    return run


def baselines() -> ml_collections.ConfigDict:
    run = load_config(os.path.join(HERE, "voc_classifier.py:encoder"))
    return ml_collections.ConfigDict(
        dict(
            kind="prior",
            task="multilabel",
            loss=run.loss,
            data=run.data,
            split="validation",
            report=dict(table=run.report.table, columns=run.report.columns, row="baselines"),
        )
    )


def _ref(run: str, metric: str) -> tuple[str, str]:
    return (run, f"validation/{metric}")


EM, MSE = "exact_match", "mean_squared_error"
CLASSIFIERS = ("frozen_encoder", "encoder", "deep_cnn")


def _claim(text: str, left, op: str, right, factor: float = 1.0) -> dict:
    return dict(text=text, left=left, op=op, right=right, factor=factor)


def _gap(run: str) -> tuple:
    """The run's validation log-loss over its training log-loss (overfitting)."""
    return ("ratio", (run, "validation/loss"), (run, "train/loss"))


def _table1_claims() -> tuple[dict, ...]:
    worse = "Table 1: the {}-code autoencoder reconstructs worse than the {}-code one (MSE)"
    return (
        _claim(worse.format(2048, 4096), _ref("ae_2048", MSE), ">", _ref("ae_4096", MSE)),
        _claim(worse.format(4096, 8192), _ref("ae_4096", MSE), ">", _ref("ae_8192", MSE)),
    )


def _table2_claims() -> tuple[dict, ...]:
    best_baseline = [("baselines", f"all_yes/validation/{EM}"), ("baselines", f"most_frequent/validation/{EM}")]
    twice = "Table 2: the {} classifier's exact match is at least twice the better trivial baseline's"
    overfits = "Table 2: the {} overfits (validation log-loss over 1.5x training)"
    return (
        *(
            _claim(twice.format(name.replace("_", " ")), _ref(name, EM), ">=", best_baseline, 2.0)
            for name in CLASSIFIERS
        ),
        _claim(
            "Table 2: the encoder trained from scratch beats the frozen encoder",
            _ref("encoder", EM),
            ">",
            _ref("frozen_encoder", EM),
        ),
        _claim(
            "Table 2: the deep CNN beats the encoder trained from scratch",
            _ref("deep_cnn", EM),
            ">",
            _ref("encoder", EM),
        ),
        _claim(overfits.format("frozen encoder"), _gap("frozen_encoder"), ">", 1.5),
        _claim(overfits.format("encoder from scratch"), _gap("encoder"), ">", 1.5),
        _claim(
            "Table 2: the deep CNN (batch norm, dropout, L2, early stopping) overfits less than the encoder",
            _gap("deep_cnn"),
            "<",
            _gap("encoder"),
        ),
    )


def claims() -> tuple[dict, ...]:
    """Every ordering paper B reports (and what its future work expects), as checks."""
    return (
        *_table1_claims(),
        *_table2_claims(),
        _claim("Table 3: the BCE segmenter learns (Dice at least 0.3)", _ref("bce", "dice"), ">=", 0.3),
        _claim("Table 3: Dice loss beats BCE on Dice", _ref("dice", "dice"), ">", _ref("bce", "dice")),
        _claim("Table 3: Dice loss beats BCE on IoU", _ref("dice", "iou"), ">", _ref("bce", "iou")),
        _claim(
            "future work: ImageNet-pretrained features beat every Table 2 classifier",
            _ref("imagenet", EM),
            ">",
            [_ref(name, EM) for name in CLASSIFIERS],
        ),
    )


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("",) + VARIANTS:
        raise ValueError(
            f"Unknown variant {variant!r} of experiments/quickstart.py: use one of "
            f"{', '.join(VARIANTS)}, or none for the quickstart."
        )
    paper = variant == "paper"
    tables = [load_config(os.path.join(HERE, spec)) for spec in TABLES]
    config = ml_collections.ConfigDict()
    config.suite = ml_collections.ConfigDict(
        dict(
            title="Paper B on the embedded dataset" + (" at the paper's settings" if paper else " (quickstart)"),
            order=(),
            notes=(NOTES[variant],),
            processes=0,  # on CPUs, one single-core process per core, each running a run (research/scheduled.py)
        )
    )
    config.runs = ml_collections.ConfigDict()
    order = []
    for table in tables:
        for name in table.suite.order:
            if name in order or name == "unet_dice":  # ae_8192 is in two tables; U-Net: see voc_segmentation.py
                continue
            if name == "frozen_encoder":
                order.append("baselines")
                config.runs.baselines = baselines()
            order.append(name)
            run = ml_collections.ConfigDict(table.runs[name])
            if not paper:
                _scale(name, run)
            _shapes(run.data, paper)
            config.runs[name] = run
        if "deep_cnn" in order and "imagenet" not in order:
            order.append("imagenet")
            config.runs.imagenet = imagenet_features(paper)
            _shapes(config.runs.imagenet.data, paper)
            config.runs.imagenet.data.image_size = 299 if paper else IMAGENET_SIZE
            if not paper:
                config.runs.imagenet.batch_size, config.runs.imagenet.eval_batch_size = BATCH, 100
    config.runs.baselines.data = config.runs.encoder.data
    config.suite.order = tuple(order)
    config.seed = 0  # every run's; --config.seed=N repeats the whole suite with other initialisations and orders
    config.suite.claims = claims()
    return config
