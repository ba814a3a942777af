"""What a run is made of: the model, the task, the optimizer, the parallel steps, step 0."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxvision import losses, models
from jaxvision.paths import path_str
from jaxvision.train import optim, steps
from jaxvision.train.state import TrainState, create_state, init_variables, run_key
from jaxvision.train.tasks import Task, make_task


@dataclasses.dataclass(frozen=True)
class Engine:
    """Everything `fit` and `evaluate` need besides the data and the workdir."""

    model: object
    task: Task
    tx: optax.GradientTransformation
    schedule: Callable[[int], float]
    initial_state: TrainState  # step 0, on the host
    train_step: Callable  # pmapped: (state, batch, stop, go) -> (state, metrics, stop votes, go)
    train_steps: Callable  # the same over stacked batches, several steps in one dispatch
    eval_step: Callable  # pmapped: (state, batch) -> each device's metrics
    metric_names: tuple[str, ...]  # what eval_step reports


def compute_dtype(half_precision: bool | None):
    """bfloat16 when asked, or by default (None) on an accelerator; float32 on a CPU, where
    bfloat16 is slower."""
    if half_precision is None:
        half_precision = jax.default_backend() != "cpu"
    return jnp.bfloat16 if half_precision else jnp.float32


def build_model(model_config: ml_collections.ConfigDict, half_precision: bool | None = False):
    """`jaxvision.models.build_model` on config.model, with batch norm synchronised and the
    compute dtype of `half_precision` (see `compute_dtype`).

    A model with an `axis_name` attribute (its batch norm's) that the config leaves unset gets
    'batch', the step's pmap axis, so batch statistics are those of the global batch. Mixed
    precision: activations and convolutions in bfloat16; parameters, optimizer state, batch
    statistics and the models' outputs (so softmax, losses and metrics) stay float32.
    """
    kwargs = model_config.to_dict()
    name = kwargs.pop("name", None)
    if name is None:
        raise ValueError(f"config.model has no name: set config.model.name to one of {', '.join(models.MODELS)}.")
    model = models.build_model(name, **kwargs)
    fields = getattr(model, "__dataclass_fields__", {})
    if "axis_name" in fields and "axis_name" not in kwargs:
        model = model.clone(axis_name=steps.AXIS)
    if "dtype" in fields and "dtype" not in kwargs:
        model = model.clone(dtype=compute_dtype(half_precision))
    return model


def _example_batch(task: Task, info) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes of a one-example batch as the data pipeline delivers it (per device)."""
    h, w, c = info.image_shape
    batch = {"image": jax.ShapeDtypeStruct((1, h, w, c), jnp.float32), "valid": jax.ShapeDtypeStruct((1,), jnp.float32)}
    if task.target == "label":
        batch["label"] = jax.ShapeDtypeStruct((1, info.num_classes), jnp.float32)
    if task.target == "mask":
        batch["mask"] = jax.ShapeDtypeStruct((1, h, w, 1), jnp.float32)
    return batch


def _check_task_fits_data(task: Task, info, data_name: str) -> None:
    problem = task.data_problem(info)
    if problem:
        hint = (
            " (for 'shapes', config.data.shapes.label='dominant' gives one-hot labels)" if data_name == "shapes" else ""
        )
        raise ValueError(
            f"config.task {task.name!r} does not fit dataset {data_name!r}, which has {problem}: "
            f"choose the task that matches the data{hint}."
        )


def _check_outputs(model, variables, task: Task, batch, model_name: str) -> None:
    out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, batch["image"])
    want = batch[task.target].shape
    if out.shape != want:
        hint = (
            "set config.model.num_classes to the dataset's number of classes"
            if task.target == "label"
            else ("use a model whose output has the target's shape")
        )
        raise ValueError(
            f"Model {model_name!r} gives outputs of shape {out.shape[1:]} per example, but config.task "
            f"{task.name!r} compares them with '{task.target}' of shape {want[1:]}: {hint}."
        )


def _regularizer(coefficient: float, model, params) -> Callable | None:
    """Keras-style L2 on the kernels of `models.l2_mask`."""
    if not coefficient:
        return None
    chosen = {path_str(path) for path, yes in jax.tree_util.tree_leaves_with_path(models.l2_mask(model, params)) if yes}
    return lambda p: losses.l2_penalty(p, coefficient, leaf_filter=chosen.__contains__)


def build_engine(
    config: ml_collections.ConfigDict, info, steps_per_epoch: int, devices: Sequence | None = None
) -> Engine:
    """The engine of a resolved config for a dataset described by `info` (DatasetInfo)."""
    model = build_model(config.model, config.half_precision)
    task = make_task(config.task, config.loss)
    _check_task_fits_data(task, info, config.get("data", {}).get("name", "?"))
    batch = _example_batch(task, info)
    variables = init_variables(model, config.seed, jnp.zeros(batch["image"].shape, jnp.float32))
    _check_outputs(model, variables, task, batch, config.model.name)
    tx, schedule = optim.make_optimizer(
        config.optimizer, model, variables["params"], steps_per_epoch, config.num_epochs
    )
    state = create_state(variables, tx, run_key(config.seed + 1))
    regularizer = _regularizer(config.optimizer.l2, model, variables["params"])
    moving = optim.moving(config.optimizer, model, variables["params"])
    metric_names = tuple(jax.eval_shape(lambda s, b: steps.eval_step(s, b, model=model, task=task), state, batch))
    return Engine(
        model=model,
        task=task,
        tx=tx,
        schedule=schedule,
        initial_state=jax.device_get(state),
        train_step=steps.parallel_train_step(model, task, tx, regularizer, devices, moving=moving),
        train_steps=steps.parallel_train_steps(model, task, tx, regularizer, devices, moving=moving),
        eval_step=steps.parallel_eval_step(model, task, devices),
        metric_names=metric_names,
    )
