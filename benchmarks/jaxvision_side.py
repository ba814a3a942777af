"""jaxvision's training step and inference, built by jaxvision's own engine.

`jaxvision.train.engine.build_engine` makes the model, task loss, optimizer, L2 regulariser,
step 0 and the pmapped, state-donating train step from a config, exactly as `./launch.sh
EXPERIMENT` does; the benchmark only replaces the data pipeline by one batch already on the
devices. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Callable

import flax
import flax.jax_utils
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from benchmarks.specs import KERAS_EPS, LEARNING_RATE, RMSPROP_RHO, SPECS, ModelSpec, make_batch
from jaxvision.train import engine as jv_engine, steps as jv_steps
from jaxvision.train.config import resolve


@dataclasses.dataclass
class Step:
    """A step function with its state and arguments; `run(n)` takes n steps and waits."""

    fn: Callable
    state: Any
    args: tuple

    def run(self, n: int) -> None:
        for _ in range(n):
            out = self.fn(self.state, *self.args)
            self.state = out[0]
        jax.block_until_ready(out)


def config_for(
    spec: ModelSpec, batch: int | None = None, half_precision: bool = False, **model_overrides
) -> ml_collections.ConfigDict:
    """The experiment config of `spec` (the fields the engine reads); float32 unless
    `half_precision` (the experiments' switch) or `model_overrides` names a dtype."""
    return resolve(
        ml_collections.ConfigDict(
            {
                "seed": 0,
                "batch_size": batch or spec.batch,
                "task": spec.task,
                "loss": spec.loss,
                "half_precision": half_precision,
                "model": {"name": spec.jaxvision_name, **spec.kwargs, **model_overrides},
                "optimizer": {
                    "name": spec.optimizer,
                    "learning_rate": LEARNING_RATE,
                    "eps": KERAS_EPS,
                    "rho": RMSPROP_RHO,
                    "l2": spec.l2,
                },
            }
        )
    )


def build_engine(spec: ModelSpec, devices, batch: int | None = None, half_precision: bool = False, **model_overrides):
    info = types.SimpleNamespace(
        name="in-memory",
        image_shape=spec.input_shape,
        num_classes=spec.num_outputs,
        multi_label=spec.task == "multilabel",
        has_mask=spec.task == "segmentation",
    )
    config = config_for(spec, batch, half_precision, **model_overrides)
    return jv_engine.build_engine(config, info, steps_per_epoch=1, devices=devices)


def put(tree, devices):
    """Arrays with a leading device axis, laid out as the pmapped step lays out its outputs
    (mesh axis 'batch', as `jaxvision.train.loop` replicates the state): any other layout
    makes the second step compile again."""
    mesh = jax.sharding.Mesh(np.array(devices), (jv_steps.AXIS,))
    return jax.device_put(tree, jax.NamedSharding(mesh, jax.P(jv_steps.AXIS)))


def device_batch(spec: ModelSpec, devices, batch: int | None = None):
    """The benchmark batch split over `devices`, placed there once: [D, B/D, ...]."""
    host = make_batch(spec, batch)
    d = len(devices)
    return put({k: v.reshape(d, v.shape[0] // d, *v.shape[1:]) for k, v in host.items()}, devices)


def train_step(
    spec: ModelSpec,
    devices=None,
    batch: int | None = None,
    donate: bool = True,
    half_precision: bool = False,
    **model_overrides,
) -> Step:
    """jaxvision's pmapped train step on `devices` (default: the first) for the global batch."""
    devices = devices or jax.local_devices()[:1]
    engine = build_engine(spec, devices, batch, half_precision, **model_overrides)
    fn = engine.train_step
    if not donate:  # the very same step function, pmapped without buffer donation
        fn = jax.pmap(fn.__wrapped__, axis_name=jv_steps.AXIS, devices=devices)
    state = flax.jax_utils.replicate(engine.initial_state, devices, axis_name=jv_steps.AXIS)
    stop = put(np.zeros((len(devices),), np.int32), devices)
    go = put(np.ones((len(devices),), np.float32), devices)  # no step refused before this one
    return Step(fn, state, (device_batch(spec, devices, batch), stop, go))


def inference(spec: ModelSpec, batch: int | None = None, half_precision: bool = False, **model_overrides) -> Step:
    """Jitted `model.apply(..., train=False)` on one device."""
    device = jax.local_devices()[:1]
    engine = build_engine(spec, device, batch, half_precision, **model_overrides)
    x = jnp.asarray(make_batch(spec, batch)["image"])
    fn = jax.jit(lambda v, x: (v, engine.model.apply(v, x, train=False)))
    return Step(fn, jax.device_put(engine.initial_state.variables()), (x,))


def _device_peak_mb():
    stats = jax.local_devices()[0].memory_stats()  # None on CPU
    return stats["peak_bytes_in_use"] / 2**20 if stats else None


def build_case(case: dict):
    """The worker's entry: a train or inference step for `case`, with its ablation applied."""
    from benchmarks import ablations, flops

    spec = SPECS[case["model"]]
    variant = dict(case.get("variant", {}))
    half = variant.pop("half_precision", False)  # the config switch, not an ablation
    overrides = ablations.apply(variant)
    if case["mode"] == "train":
        step = train_step(
            spec,
            jax.local_devices()[: variant.get("devices", 1)],
            case.get("batch"),
            donate=variant.get("donate", True),
            half_precision=half,
            **overrides,
        )
    else:
        step = inference(spec, batch=case.get("batch"), half_precision=half, **overrides)
    info = {
        "flops_per_step": flops.count(step.fn, step.state, *step.args),
        "device": jax.local_devices()[0].device_kind,
        "backend": jax.default_backend(),
        "versions": {"jax": jax.__version__, "flax": flax.__version__},
    }
    return step.run, _device_peak_mb, info
