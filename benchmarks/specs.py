"""The benchmarked models as plain data, shared by the jaxvision, Keras and PyTorch sides.

Each spec names one architecture at the batch, input, loss and optimizer its experiment
trains with, so every framework runs the same step. No framework is imported here: a worker
process imports only the framework it measures.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str  # key used on the command line and in the tables
    jaxvision_name: str  # jaxvision.models.build_model name
    kwargs: dict  # build_model keyword arguments
    input_shape: tuple  # (H, W, C) of one image
    batch: int
    task: str  # jaxvision.train.tasks task ...
    loss: str  # ... and loss
    optimizer: str  # 'rmsprop' | 'adam' | 'adamax'
    num_outputs: int = 0  # classes (classification / multilabel)
    l2: float = 0.0  # Keras kernel_regularizer on the model's l2 kernels
    dropout_rng: bool = False  # the model draws dropout masks when training
    filters: tuple = ()  # encoder filters, for the peers (jaxvision derives them itself)


SPECS: dict[str, ModelSpec] = {
    # Paper B, section autoencoder: the 8192-code net (its encoder is the classifiers').
    "autoencoder": ModelSpec(
        "autoencoder",
        "autoencoder",
        {"code_size": 8192},
        (128, 128, 3),
        32,
        "reconstruction",
        "mean_squared_error",
        "rmsprop",
        filters=(256, 128, 64, 32),
    ),
    # Paper B, segmentation: 64x64 grayscale, Adam, BCE.
    "segmenter": ModelSpec(
        "segmenter", "segmenter", {}, (64, 64, 1), 32, "segmentation", "binary_cross_entropy", "adam", dropout_rng=True
    ),
    # Paper B, deep CNN: 5 x [conv, BN, ReLU, pool, dropout], L2, sigmoid BCE on 3 labels.
    "deep_cnn": ModelSpec(
        "deep_cnn",
        "deep_cnn",
        {},
        (128, 128, 3),
        32,
        "multilabel",
        "binary_cross_entropy",
        "adam",
        num_outputs=3,
        l2=1e-4,
        dropout_rng=True,
    ),
    # Paper A: InceptionV3 on Flowers-102, Adamax, "binary cross-entropy" on the softmax.
    "inception_v3": ModelSpec(
        "inception_v3",
        "inception_v3",
        {"num_classes": 102},
        (299, 299, 3),
        16,
        "classification",
        "binary_cross_entropy",
        "adamax",
        num_outputs=102,
    ),
}

LEARNING_RATE = 1e-3
KERAS_EPS = 1e-7  # Keras's optimizer epsilon, which jaxvision's configs copy
RMSPROP_RHO = 0.9


def make_batch(spec: ModelSpec, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """A deterministic in-memory NHWC batch with the keys jaxvision's tasks read."""
    n = batch or spec.batch
    rng = np.random.default_rng(seed)
    out = {"image": rng.random((n, *spec.input_shape), dtype=np.float32), "valid": np.ones((n,), np.float32)}
    if spec.task == "segmentation":
        out["mask"] = (rng.random((n, *spec.input_shape[:2], 1)) > 0.5).astype(np.float32)
    elif spec.task == "classification":
        out["label"] = np.eye(spec.num_outputs, dtype=np.float32)[rng.integers(0, spec.num_outputs, n)]
    elif spec.task == "multilabel":
        out["label"] = (rng.random((n, spec.num_outputs)) > 0.5).astype(np.float32)
    return out


def target(spec: ModelSpec, batch: dict[str, np.ndarray]) -> np.ndarray:
    """The array the loss compares the output with (the image itself for the autoencoder)."""
    return batch[{"reconstruction": "image", "segmentation": "mask"}.get(spec.task, "label")]
