"""Starting a run from weights trained elsewhere (`config.init`).

    config.init.workdir      a finished run whose checkpoint lends its weights ('' = none)
    config.init.checkpoint   'best' or 'latest' checkpoint of that run
    config.init.params       top-level parameter names copied from it, e.g. ('encoder',)
    config.init.keras_h5     a Keras InceptionV3 weight file (jaxvision.convert) ('' = none)

Paper B's frozen-encoder classifier takes the trained autoencoder's `encoder`; paper A
fine-tunes Keras' ImageNet weights. `prepare(config, workdir)` writes the run's step 0 into
its workdir with those weights in place, and `train.fit` then starts from that checkpoint as it
resumes from any other; a workdir that already holds a checkpoint is left alone, so a resumed
run never goes back to the borrowed weights.
"""

from __future__ import annotations

import os

import jax
import ml_collections
import orbax.checkpoint as ocp

from jaxvision import convert, data
from jaxvision.train.checkpoint import Checkpoints
from jaxvision.train.config import resolve
from jaxvision.train.engine import build_engine
from jaxvision.train.monitor import Monitor

KERAS_WEIGHTS_HINT = (
    "download Keras' inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 (from "
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/) and pass "
    "--config.init.keras_h5=PATH"
)


def _source_params(init: ml_collections.ConfigDict) -> dict:
    """The parameters `init.params` of the run in `init.workdir`, as host arrays."""
    directory = os.path.join(os.path.abspath(init.workdir), "best" if init.checkpoint == "best" else "checkpoints")
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True),
                                    item_names=("state", "meta"))
    step = manager.latest_step() if os.path.isdir(directory) else None
    if step is None:
        raise FileNotFoundError(
            f"config.init.workdir {init.workdir} holds no {init.checkpoint} checkpoint to start from: train that "
            f"run first (for paper B's frozen encoder: ./launch.sh experiments/voc_autoencoder.py:code8192), or "
            f"point --config.init.workdir at a finished run.")
    params = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]["params"]
    manager.close()
    missing = [name for name in init.params if name not in params]
    if missing:
        raise ValueError(f"config.init.params names {missing[0]!r}, which the run in {init.workdir} does not "
                         f"have: its parameters are {', '.join(sorted(params))}.")
    return {name: params[name] for name in init.params}


def _graft(params: dict, borrowed: dict, source: str) -> dict:
    """`params` with the subtrees of `borrowed` put in, after checking every shape matches."""
    for name, subtree in borrowed.items():
        if name not in params:
            raise ValueError(f"config.init.params names {name!r}, which this model does not have: its parameters "
                             f"are {', '.join(sorted(params))}.")
        ours = jax.tree_util.tree_flatten_with_path(params[name])
        theirs = jax.tree_util.tree_flatten_with_path(subtree)
        if jax.tree.structure(params[name]) != jax.tree.structure(subtree) or any(
                a.shape != b.shape for (_, a), (_, b) in zip(ours[0], theirs[0])):
            raise ValueError(f"The {name!r} weights of {source} do not fit this model's {name!r} (different layers "
                             f"or shapes): give both runs the same filters and image size.")
    return {**params, **borrowed}


def prepare(config: ml_collections.ConfigDict, workdir: str) -> str | None:
    """Writes step 0 with the borrowed weights into `workdir`; returns what was done (None: nothing)."""
    init = config.get("init")
    if init is None:
        return None
    if not init.keras_h5 and not init.workdir:
        raise ValueError(f"This experiment starts from pretrained weights, but config.init names none: "
                         f"{KERAS_WEIGHTS_HINT} (or --config.init.workdir=RUN for a run's checkpoint).")
    if init.keras_h5 and not os.path.isfile(init.keras_h5):
        raise FileNotFoundError(f"config.init.keras_h5 {init.keras_h5} is not a file: {KERAS_WEIGHTS_HINT}.")
    checkpoints = Checkpoints(workdir, keep=config.checkpoint.keep if "checkpoint" in config else 2)
    try:
        if checkpoints.step() is not None:
            return None
        borrowed = None if init.keras_h5 else _source_params(init)  # before the costly build: fail fast
        config = resolve(config)
        pipelines = data.make_pipelines(config)
        engine = build_engine(config, pipelines.info, pipelines.steps_per_epoch)
        state = engine.initial_state
        if init.keras_h5:
            variables = convert.load_inception_v3(init.keras_h5, engine.model, rng=jax.random.PRNGKey(config.seed))
            params, batch_stats, source = variables["params"], variables["batch_stats"], init.keras_h5
        else:
            source = f"the {init.checkpoint} checkpoint in {init.workdir}"
            params, batch_stats = _graft(state.params, borrowed, source), state.batch_stats
        params = jax.device_get(params)
        state = state.replace(params=params, batch_stats=jax.device_get(batch_stats), opt_state=engine.tx.init(params))
        monitor = Monitor(config.monitor.metric, config.monitor.mode)
        # The loop's own bookkeeping of a run that has done nothing yet.
        checkpoints.save(jax.device_get(state), {"epoch": 0, "monitor": monitor.counters(),
                                                 "early_stopped": False, "results": {}})
        checkpoints.wait()
    finally:
        checkpoints.close()
    return f"Starting from the weights of {source}."
