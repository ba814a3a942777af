"""The single runs of experiments/flowers_real.py (paper A on real flower photos): the frozen
ImageNet InceptionV3 with a new softmax head on cached features, a point of the data-scaling
curve, the whole network fine-tuned from a head, paper A's own recipe, and InceptionV3 from
scratch. flowers_real.py describes each and builds its variants and suites from them.

Not an experiment file (its name starts with an underscore): flowers_real.py loads it by path.
"""

import os

import ml_collections

from jaxvision import stats
from jaxvision.configs import load_config
from jaxvision.research.results import Estimate

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data")  # the real photos beside the repository
DATASETS = {
    "flowers17": dict(
        folder="flowers17", train_split="train", held_out="test", classes=12, row="Oxford 17 Flowers (12 classes)"
    ),
    "flowers102": dict(
        folder="flowers102",
        train_split="train+test",
        held_out="validation",
        classes=102,
        row="2,858 Oxford 102 photos",
    ),
}
HEAD_COPIES, HEAD_PASSES = 6, 50
HEAD_STEPS_PER_DISPATCH = 128  # more than any head's epoch: one dispatch an epoch
FINETUNE_SIZE, FINETUNE_EPOCHS = 299, 5
PAPER_A_TEST = (153, 160)  # paper A's 0.95625: 153 of its 160 test photos
CURVE_TABLE = "Paper A on real photos: held-out top-1 against training photos per class"
CV_FOLDS, CV_COPIES, CV_PASSES = 5, (1, 3, 6), (10, 20, 30, 40, 50, 60)
PAPER_RECIPE_TABLE = "Paper A on real photos: paper A's own recipe on 2,858 Oxford 102 photos"
CV_TABLE = f"Paper A on real photos: the Oxford 102 head, {CV_FOLDS}-fold cross-validation on the training photos"


def _base(dataset: str, loss_variant: str = "scratch") -> ml_collections.ConfigDict:
    d = DATASETS[dataset]
    config = load_config(os.path.join(HERE, f"flowers_inception.py:{loss_variant}"))
    config.data.name = "folder"
    config.data.folder.root = os.path.normpath(os.path.join(DATA, d["folder"]))
    config.data.train_split = d["train_split"]
    config.data.eval_splits = (d["held_out"],)
    config.model.num_classes = d["classes"]
    config.monitor.metric = ""  # nothing is selected on the held-out photos
    held_out = d["held_out"]
    config.report.columns = (
        ("held-out top-1 accuracy", f"{held_out}/accuracy", None),
        ("held-out binary accuracy (Keras' 'accuracy' beside BCE)", f"{held_out}/binary_accuracy", None),
        ("held-out loss", f"{held_out}/loss", None),
        ("training top-1 accuracy", "train/accuracy", None),
    )
    config.report.table = f"Paper A on real photos: {d['row']}"
    return config


def _paper_a_row(what: str) -> tuple:
    """Paper A's 153/160 as a report row beside ours, with its Wilson interval."""
    correct, photos = PAPER_A_TEST
    return (
        f"paper A: {what}, its {photos} test photos",
        "held-out top-1 accuracy",
        Estimate(correct / photos, *stats.wilson_interval(correct, photos)),
    )


def head(dataset: str, loss: str = "bce_softmax", size: int = 299) -> ml_collections.ConfigDict:
    """The ImageNet backbone frozen, its features cached, a new softmax head trained on them."""
    config = _base(dataset, loss)
    config.data.image_size = size
    config.cache_features = True
    config.feature_views = HEAD_COPIES
    config.num_epochs = HEAD_COPIES * HEAD_PASSES  # every augmented copy seen HEAD_PASSES times
    config.checkpoint = ml_collections.ConfigDict(dict(every_epochs=HEAD_PASSES))
    # An epoch of the head is 76 steps of a 2048x102 layer, too small to dispatch one by one.
    config.steps_per_dispatch = HEAD_STEPS_PER_DISPATCH
    config.model.freeze_backbone = True
    config.data.train_crop = "inception"
    config.data.inception_crop_area = (0.5, 1.0)
    config.init.imagenet = "auto"
    config.report.row = (
        f"{DATASETS[dataset]['row']}, ImageNet InceptionV3 frozen, softmax head "
        f"({'BCE' if loss == 'bce_softmax' else 'categorical CE'}), {size}x{size}, {HEAD_COPIES} augmented copies"
    )
    if (dataset, loss, size) == ("flowers102", "bce_softmax", 299):
        config.report.extra_rows = (_paper_a_row("ImageNet InceptionV3 fine-tuned on Oxford 102 (BCE)"),)
    return config


def curve_point(per_class: int) -> ml_collections.ConfigDict:
    """The head on the centred view of `per_class` training photos of each class (0: all)."""
    config = head("flowers102")
    config.data.train_crop = config.data.eval_crop
    config.data.random_flip = False
    config.feature_views = 1
    config.train_per_class = per_class
    config.num_epochs = HEAD_COPIES * HEAD_PASSES  # as many passes over each photo as the head's
    config.report.extra_rows = ()
    config.report.table = CURVE_TABLE
    photos = (
        f"{per_class} training photo{'s' if per_class > 1 else ''} of each class"
        if per_class
        else "every training photo"
    )
    config.report.row = f"Oxford 102 head on the centred view, {photos}"
    return config


def curve_finetuned(per_class: int) -> ml_collections.ConfigDict:
    """The whole network fine-tuned from the curve's head on the same `per_class` photos of each class."""
    config = finetune("flowers102", train_batch_norm=False)
    config.train_per_class = per_class
    config.init.workdir = f"curve_{per_class}"
    config.report.table = CURVE_TABLE
    config.report.row = (
        f"Oxford 102 fine-tuned from that head, {per_class} training photos of each class, batch norm frozen, "
        f"{FINETUNE_SIZE}x{FINETUNE_SIZE}, {FINETUNE_EPOCHS} epochs"
    )
    return config


def cv_fold(copies: int, fold: int) -> ml_collections.ConfigDict:
    """The Oxford 102 head on `copies` views of each training photo (1: the centred one; more:
    augmented copies, those of the head run), trained without fold `fold` of CV_FOLDS and scored
    on it every epoch, up to the most passes cross-validated."""
    config = head("flowers102") if copies > 1 else curve_point(0)
    config.feature_views = copies
    config.cv_folds, config.cv_fold = CV_FOLDS, fold
    config.data.eval_splits = (config.data.train_split,)  # nothing of the held-out split is read, not even its labels
    config.num_epochs = copies * CV_PASSES[-1]
    config.report.columns = ((f"fold top-1 accuracy after {CV_PASSES[-1]} passes", "fold/accuracy", None),)
    config.report.extra_rows = ()
    config.report.table = CV_TABLE
    views = "the centred view" if copies == 1 else f"{copies} augmented copies"
    config.report.row = f"Oxford 102 head on {views}, fold {fold + 1} of {CV_FOLDS} held out of training"
    return config


def finetune(dataset: str, train_batch_norm: bool) -> ml_collections.ConfigDict:
    """The whole network, from the head run (`init.workdir`, a run of the suite)."""
    config = _base(dataset, "bce_softmax")
    config.num_epochs = FINETUNE_EPOCHS
    config.data.image_size = FINETUNE_SIZE
    config.data.train_crop = "inception"
    config.data.inception_crop_area = (0.35, 1.0)
    config.model.train_batch_norm = train_batch_norm
    config.optimizer.learning_rate = 1e-4
    config.optimizer.backbone_lr_scale = 0.1
    config.batch_size = 16  # chosen when batch norm trained at 32 needed 19 GB on the CPU (7.9 GB since, RESULTS.md)
    config.init = ml_collections.ConfigDict(dict(workdir=dataset, checkpoint="latest", params=()))
    config.report.row = (
        f"{DATASETS[dataset]['row']}, fine-tuned from the head, batch norm "
        f"{'trained' if train_batch_norm else 'frozen'}, {FINETUNE_SIZE}x{FINETUNE_SIZE}, {FINETUNE_EPOCHS} epochs"
    )
    return config


def paper_recipe(dataset: str, loss: str = "bce_softmax") -> ml_collections.ConfigDict:
    """Paper A's recipe as experiments/flowers_inception.py has it (ImageNet InceptionV3 with a new
    softmax head, every layer trained from the first step, batch norm included; 299x299 centred
    squares with flips; Adamax at 1e-3, batch 32, 16 epochs; the last epoch's state scored), on
    the real photos: nothing of it changed, so the row is the paper's recipe at this size."""
    config = _base(dataset, loss)
    config.report.table = PAPER_RECIPE_TABLE if dataset == "flowers102" else config.report.table
    config.report.row = (
        f"{DATASETS[dataset]['row']}, paper A's recipe: ImageNet InceptionV3, every layer trained "
        f"({'BCE' if loss == 'bce_softmax' else 'categorical CE'}), {config.data.image_size}x{config.data.image_size}, "
        f"batch {config.batch_size}, {config.num_epochs} epochs"
    )
    if (dataset, loss) == ("flowers102", "bce_softmax"):
        config.report.extra_rows = (_paper_a_row("the same recipe on Oxford 102"),)
    return config


def scratch(dataset: str) -> ml_collections.ConfigDict:
    config = _base(dataset, "scratch")
    config.num_epochs = 40
    config.data.image_size = 75
    config.data.train_crop = "inception"
    config.data.inception_crop_area = (0.35, 1.0)
    config.report.row = f"{DATASETS[dataset]['row']}, from scratch, 75x75"
    return config
