"""Pure train and eval steps for one device's shard, and their pmapped forms.

Every collective names the axis 'batch'. Under `jax.pmap(..., axis_name='batch')` gradients are
averaged with `lax.pmean`, batch norm (built with `axis_name='batch'`, see engine.py) normalises
with the statistics of the global batch, and training metrics are summed with `lax.psum`, so one
device and many run the same code and, up to float rounding, give the same numbers.

Evaluation has no collective at all: each device returns its own sums, which the host adds up
over devices, batches and processes. So processes may hold different numbers of evaluation
batches without any of them waiting for a collective that never comes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import jax_utils
from jax import lax

from jaxvision.metrics import Ratio
from jaxvision.train.state import TrainState, step_key
from jaxvision.train.tasks import Task

AXIS = "batch"


def replicate(tree, devices=None):
    """One copy per local device (or per one of `devices`), laid out as the pmapped steps return
    their state.

    Same mesh axis name as the steps' outputs, so step 2 reuses step 1's compiled program.
    """
    return jax_utils.replicate(tree, devices=devices, axis_name=AXIS)


def _loss_ratio(per_example: jax.Array, valid: jax.Array) -> Ratio:
    return Ratio(jnp.sum(per_example * valid), jnp.sum(valid))


# No step of learning multiplies the weights' norm by 10 (a blow-up does, by up to 1e9): refused.
WEIGHT_GROWTH_LIMIT = 10.0


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    rng: jax.Array,
    *,
    model,
    task: Task,
    tx: optax.GradientTransformation,
    regularizer: Callable[[dict], jax.Array] | None = None,
    moving=None,
    go: jax.Array | None = None,
) -> tuple[TrainState, dict[str, Ratio]]:
    """One optimizer step on one device's shard of the global batch: minimises the batch's mean
    loss plus `regularizer(params)` (L2). Returns the new state and metrics summed over devices:
    the task's, 'loss' (without L2), 'grad_norm' (of the averaged gradient) and 'finite' (1 when
    the step was taken). A step whose loss, gradient norm or resulting state is not finite leaves
    the state unchanged, step counter included, so a diverging run never holds NaN weights; the
    caller sees 'finite' 0 and stops. `moving` (bools like the parameters; None: all) names what
    the optimizer may change: only that is checked. `go` 0 (an earlier step was refused) refuses
    this one too, so the host, reading metrics a few steps late, finds the state before the first.
    """
    # Each device draws its own dropout masks; fold_in keeps them a function of (rng, device).
    dropout_rng = jax.random.fold_in(rng, lax.axis_index(AXIS))
    valid = batch["valid"]

    def loss_fn(params):
        outputs, updates = model.apply(
            {"params": params, "batch_stats": state.batch_stats},
            batch["image"],
            train=True,
            mutable=["batch_stats"],
            rngs={"dropout": dropout_rng},
        )
        per_example = task.loss(outputs, batch)
        loss = jnp.sum(per_example * valid) / jnp.maximum(jnp.sum(valid), 1.0)
        if regularizer is not None:
            loss = loss + regularizer(params)
        return loss, (outputs, updates.get("batch_stats", {}), per_example)

    grads, (outputs, batch_stats, per_example) = jax.grad(loss_fn, has_aux=True)(state.params)
    grads = lax.pmean(grads, AXIS)
    # Batch norm already normalised with global statistics (engine.build_model gives it the
    # 'batch' axis); averaging the running statistics keeps the replicas identical even for a
    # module whose batch norm has no axis name.
    batch_stats = lax.pmean(batch_stats, AXIS)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        batch_stats=batch_stats,
        opt_state=opt_state,
    )

    metrics = {"loss": _loss_ratio(per_example, valid), **task.metrics(outputs, batch)}
    metrics = lax.psum(metrics, AXIS)
    grad_norm = optax.global_norm(grads)
    metrics["grad_norm"] = Ratio(grad_norm, jnp.ones(()))
    return _taken_if_finite(new_state, state, metrics, moving, go)


def _taken_if_finite(new_state: TrainState, state: TrainState, metrics: dict[str, Ratio], moving, go):
    """(new_state, metrics + 'finite' 1) if the step may be taken, else (state, ... 'finite' 0).

    Besides non-finite values, an update that multiplies the trained weights' norm by more than
    WEIGHT_GROWTH_LIMIT is refused: such weights are finite, but every step after them diverges,
    so the state kept at the stop would be no place to resume from ('weight_growth' says by how much)."""

    def trained(params):
        leaves = jax.tree.leaves(params)
        return leaves if moving is None else [p for p, m in zip(leaves, jax.tree.leaves(moving)) if m]

    def with_trained(params, leaves):
        if moving is None:
            return jax.tree.unflatten(jax.tree.structure(params), leaves)
        chosen = iter(leaves)
        return jax.tree.map(lambda p, m: next(chosen) if m else p, params, moving)

    changed = trained(new_state.params)
    before = optax.global_norm(trained(state.params))
    growth = jnp.where(before > 0, optax.global_norm(changed) / jnp.maximum(before, 1e-30), 1.0)
    finite = (
        jnp.isfinite(metrics["loss"].total)
        & jnp.isfinite(metrics["grad_norm"].total)
        & _all_finite((changed, new_state.opt_state, new_state.batch_stats))
        & (growth <= WEIGHT_GROWTH_LIMIT)
    )
    metrics["weight_growth"] = Ratio(growth, jnp.ones(()))
    if go is not None:
        finite = finite & (go > 0)
    metrics["finite"] = Ratio(finite.astype(jnp.float32), jnp.ones(()))

    # A branch, not an elementwise select: the state is not copied at every step (a frozen
    # InceptionV3 under a small head made the select cost ten times the head's own step).
    # It also keeps compiles short: XLA:CPU took over 14 minutes on the select at 299x299.
    # Frozen parameters stay out of the branch: passed through it, XLA:CPU copied InceptionV3's
    # frozen kernels into the branch's layouts at every step of a head on cached features.
    def parts(s: TrainState):
        return s.step, trained(s.params), s.batch_stats, s.opt_state

    step, leaves, batch_stats, opt_state = lax.cond(
        finite, lambda pair: pair[0], lambda pair: pair[1], (parts(new_state), parts(state))
    )
    kept = state.replace(
        step=step, params=with_trained(state.params, leaves), batch_stats=batch_stats, opt_state=opt_state
    )
    return kept, metrics


def _all_finite(tree) -> jax.Array:
    """Whether every floating-point value of `tree` is finite (one scalar)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def eval_step(state: TrainState, batch: dict[str, jax.Array], *, model, task: Task) -> dict[str, Ratio]:
    """Metrics (and 'loss') of one device's shard in inference mode, padding left out."""
    outputs = model.apply(state.variables(), batch["image"], train=False)
    return {"loss": _loss_ratio(task.loss(outputs, batch), batch["valid"]), **task.metrics(outputs, batch)}


def _one_step(model, task: Task, tx: optax.GradientTransformation, regularizer, moving) -> Callable:
    """`(state, batch, go) -> (state, metrics)`: `train_step` with the step's own randomness."""

    def one(state, batch, go):
        return train_step(
            state, batch, step_key(state), model=model, task=task, tx=tx, regularizer=regularizer, moving=moving, go=go
        )

    return one


def parallel_train_step(
    model,
    task: Task,
    tx: optax.GradientTransformation,
    regularizer: Callable[[dict], jax.Array] | None = None,
    devices: Sequence | None = None,
    moving=None,
) -> Callable:
    """`train_step` under pmap: `(state, batch, stop, go) -> (state, metrics, stop_votes, go)`.

    The randomness of a step is `step_key(state)`. `stop` is each device's vote
    to end the run (a signal reached its process); the votes summed over every device of every
    process come back, so all processes agree on the step at which they stop. `go` is 1 on every
    device until a step is refused (see `train_step`); each step passes its `go` to the next.
    """

    one = _one_step(model, task, tx, regularizer, moving)

    def step(state, batch, stop, go):
        state, metrics = one(state, batch, go)
        return state, metrics, lax.psum(stop, AXIS), metrics["finite"].total

    return jax.pmap(step, axis_name=AXIS, devices=devices, donate_argnums=(0,))


def parallel_train_steps(
    model,
    task: Task,
    tx: optax.GradientTransformation,
    regularizer: Callable[[dict], jax.Array] | None = None,
    devices: Sequence | None = None,
    moving=None,
) -> Callable:
    """Several `train_step`s in one dispatch (`lax.scan`): `(state, batches, stop, go) -> (state,
    metrics, stop_votes, go)` as `parallel_train_step`, with each device's batches stacked on a
    leading axis `[steps, per-device batch, ...]` and the metrics stacked the same way. For steps
    so small that dispatching them costs more than running them (a head on cached features)."""

    one = _one_step(model, task, tx, regularizer, moving)

    def steps(state, batches, stop, go):
        def scanned(carry, batch):
            state, metrics = one(carry[0], batch, carry[1])
            return (state, metrics["finite"].total), metrics

        (state, go), metrics = lax.scan(scanned, (state, go), batches)
        return state, metrics, lax.psum(stop, AXIS), go

    return jax.pmap(steps, axis_name=AXIS, devices=devices, donate_argnums=(0,))


def parallel_eval_step(model, task: Task, devices: Sequence | None = None) -> Callable:
    """`eval_step` under pmap: `(state, batch) -> metrics` of each device."""
    return jax.pmap(functools.partial(eval_step, model=model, task=task), axis_name=AXIS, devices=devices)
