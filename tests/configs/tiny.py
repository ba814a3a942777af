"""A tiny experiment for the engine's tests: 16x16 'shapes' images, models of a few filters.

    python -m jaxvision.main --config tests/configs/tiny.py:TASK --workdir /tmp/tiny

TASK is 'classification' (default), 'multilabel', 'reconstruction' or 'segmentation'. It trains
in seconds on a CPU; the numbers mean nothing beyond "the loop works".
"""

import ml_collections

from jaxvision.data import default_data_config

_MODELS = {
    "classification": dict(name="deep_cnn", filters=(4, 8), num_classes=3, dropout=0.25, l2_blocks=(1,)),
    "multilabel": dict(name="encoder_classifier", filters=(4, 8), pools=1, num_classes=3),
    "reconstruction": dict(name="autoencoder", code_size=8192),
    "segmentation": dict(name="segmenter", filters=(4, 8, 8), dropout=0.25),
}
_LOSSES = {
    "classification": "softmax_cross_entropy",
    "multilabel": "binary_cross_entropy",
    "reconstruction": "mean_squared_error",
    "segmentation": "binary_cross_entropy+dice",
}
_MONITORS = {
    "classification": ("validation/accuracy", "max"),
    "multilabel": ("validation/binary_accuracy", "max"),
    "reconstruction": ("validation/loss", "min"),
    "segmentation": ("validation/dice", "max"),
}


def get_config(variant: str = "classification") -> ml_collections.ConfigDict:
    if variant not in _MODELS:
        raise ValueError(f"Unknown variant {variant!r} of tests/configs/tiny.py: use one of {', '.join(_MODELS)}.")
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.batch_size = 8
    config.eval_batch_size = 8
    config.num_epochs = 2
    config.task = variant
    config.loss = _LOSSES[variant]

    config.data = default_data_config()
    config.data.name = "shapes"
    config.data.image_size = 16
    config.data.grayscale = variant == "segmentation"
    config.data.random_flip = True
    if variant == "reconstruction":
        # The paper's autoencoder (the smallest one build_model offers) needs far more steps than
        # a test has to improve on its untrained output, a sigmoid of about 0.5, which is already
        # close to the mean pixel in [0, 1]. Pixels in [0, 0.5] put that output visibly off, so a
        # few steps show the loss falling.
        config.data.value_range = (0.0, 0.5)
    config.data.shapes.update(
        dict(
            image_size=16,
            num_train=96,
            num_validation=8,
            num_test=12,
            label="dominant" if variant == "classification" else "multi_hot",
        )
    )

    config.model = ml_collections.ConfigDict(_MODELS[variant])
    config.optimizer = ml_collections.ConfigDict(
        dict(name="adam", learning_rate=3e-3, l2=1e-4 if variant == "classification" else 0.0)
    )
    metric, mode = _MONITORS[variant]
    config.monitor = ml_collections.ConfigDict(dict(metric=metric, mode=mode))
    config.checkpoint = ml_collections.ConfigDict(dict(keep=2, every_steps=0))
    return config
