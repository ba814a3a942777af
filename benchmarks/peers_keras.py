"""The benchmarked architectures in Keras 3 (run with KERAS_BACKEND=jax), as a Keras user
writes them: the papers' own framework. InceptionV3 is `keras.applications.InceptionV3`.

Parameter counts match jaxvision's exactly (tests/test_benchmarks_peers.py).
"""

from __future__ import annotations

import keras
from keras import layers

from benchmarks.specs import KERAS_EPS, LEARNING_RATE, RMSPROP_RHO, ModelSpec


def _conv(filters, regularizer=None, activation="relu"):
    return layers.Conv2D(filters, 3, padding="same", activation=activation, kernel_regularizer=regularizer)


def autoencoder(filters, shape, pools=3):
    x = inputs = keras.Input(shape)
    for i, f in enumerate(filters):
        x = _conv(f)(x)
        if i < pools:
            x = layers.MaxPooling2D(2)(x)
    for i in range(len(filters) - 2, -1, -1):
        x = _conv(filters[i])(x)
        if i < pools:
            x = layers.UpSampling2D(2)(x)
    return keras.Model(inputs, _conv(shape[-1], activation="sigmoid")(x))


def segmenter(shape, filters=(256, 128, 64, 32), dropout=0.5):
    pools = len(filters) - 1
    x = inputs = keras.Input(shape)
    for i, f in enumerate(filters):
        x = _conv(f)(x)
        if i == pools - 1:
            x = layers.Dropout(dropout)(x)
        if i < pools:
            x = layers.MaxPooling2D(2)(x)
    for f in reversed(filters[1:]):
        x = layers.UpSampling2D(2)(_conv(f)(x))
    return keras.Model(inputs, _conv(1, activation=None)(x))


def deep_cnn(shape, num_classes, l2, filters=(32, 64, 128, 256, 256), dropout=0.25):
    reg = keras.regularizers.L2(l2)  # jaxvision's step regularises every kernel
    x = inputs = keras.Input(shape)
    for f in filters:
        x = _conv(f, reg, activation=None)(x)
        x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(x)
        x = layers.MaxPooling2D(2)(layers.ReLU()(x))
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(num_classes, kernel_regularizer=reg)(layers.Flatten()(x))
    return keras.Model(inputs, x)


def build(spec: ModelSpec) -> keras.Model:
    if spec.name == "autoencoder":
        return autoencoder(spec.filters, spec.input_shape)
    if spec.name == "segmenter":
        return segmenter(spec.input_shape)
    if spec.name == "deep_cnn":
        return deep_cnn(spec.input_shape, spec.num_outputs, spec.l2)
    if spec.name == "inception_v3":
        # Paper A's model: softmax outputs scored with binary cross-entropy.
        return keras.applications.InceptionV3(weights=None, input_shape=spec.input_shape, classes=spec.num_outputs)
    raise ValueError(f"No Keras peer for {spec.name!r}.")


def compile_model(spec: ModelSpec, model: keras.Model) -> keras.Model:
    opt = {
        "rmsprop": lambda: keras.optimizers.RMSprop(LEARNING_RATE, rho=RMSPROP_RHO, epsilon=KERAS_EPS),
        "adam": lambda: keras.optimizers.Adam(LEARNING_RATE, epsilon=KERAS_EPS),
        "adamax": lambda: keras.optimizers.Adamax(LEARNING_RATE, epsilon=KERAS_EPS),
    }[spec.optimizer]()
    if spec.task == "reconstruction":
        loss = keras.losses.MeanSquaredError()
    elif spec.task in ("segmentation", "multilabel"):
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    else:
        loss = keras.losses.BinaryCrossentropy()
    model.compile(optimizer=opt, loss=loss, jit_compile=True)
    return model


def build_case(case: dict):
    """The worker's entry: `train_on_batch` / `predict_on_batch` on arrays already on the device."""
    import jax

    from benchmarks.specs import SPECS, make_batch, target

    spec = SPECS[case["model"]]
    model = compile_model(spec, build(spec))
    batch = make_batch(spec, case.get("batch"))
    x, y = jax.device_put(batch["image"]), jax.device_put(target(spec, batch))
    if case["mode"] == "train":
        step = lambda: model.train_on_batch(x, y)  # returns the loss as a host float: waits
    else:
        step = lambda: jax.block_until_ready(model.predict_on_batch(x))

    def run(n):
        for _ in range(n):
            step()

    def device_peak_mb():
        stats = jax.local_devices()[0].memory_stats()
        return stats["peak_bytes_in_use"] / 2**20 if stats else None

    info = {
        "device": jax.local_devices()[0].device_kind,
        "backend": keras.backend.backend(),
        "versions": {"keras": keras.__version__, "jax": jax.__version__},
    }
    return run, device_peak_mb, info
