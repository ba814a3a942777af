"""Starting a run from weights trained elsewhere (`config.init`).

    config.init.imagenet     ImageNet weights for InceptionV3: 'auto', 'keras' or 'tf2015'
                             (see jaxvision.weights.pretrained; '' = none)
    config.init.keras_h5     a Keras InceptionV3 weight file (jaxvision.weights.convert); '' = Keras's
                             notop file in ~/.keras/models when init.imagenet asks for it
    config.init.workdir      a finished run whose checkpoint lends its weights ('' = none)
    config.init.checkpoint   'best' or 'latest' checkpoint of that run
    config.init.params       top-level parameter names copied from it, e.g. ('encoder',);
                             () = all its parameters and batch-norm statistics

Paper B's frozen-encoder classifier takes the trained autoencoder's `encoder`; paper A
fine-tunes ImageNet weights, and its second stage starts from the whole network of the first.
`prepare(config, workdir)` writes the run's step 0 into its workdir with those weights in
place, and `train.fit` then starts from that checkpoint as it resumes from any other; a
workdir that already holds a checkpoint is left alone, so a resumed run never goes back to the
borrowed weights.

`bind(config, workdir)` makes the model the graph its weights were trained with: the 2015
ImageNet weights need InceptionV3's `last_pool='max'`. The choice is recorded in
WORKDIR/init.json, so a resumed or evaluated run keeps it whatever files appeared since.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp

from jaxvision import models
from jaxvision.weights import pretrained
from jaxvision.train.checkpoint import Checkpoints, run_meta, writable_workdir
from jaxvision.train.monitor import Monitor
from jaxvision.train.run import open_run

RECORD = "init.json"


def default_init() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(imagenet="", keras_h5="", workdir="", checkpoint="best", params=()))


def _resolved_init(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict | None:
    given = config.get("init")
    if given is None:
        return None
    init = default_init()
    for key, value in given.items():
        if key not in init:
            raise ValueError(f"Unknown key config.init.{key}: the known keys are {', '.join(sorted(init.keys()))}.")
        init[key] = tuple(value) if isinstance(init[key], tuple) else value
    if init.keras_h5 and init.imagenet in ("", "auto"):  # a Keras file named: its weights are wanted
        init.imagenet = "keras"
    if init.checkpoint not in ("best", "latest"):
        raise ValueError(f"config.init.checkpoint is {init.checkpoint!r}: use 'best' or 'latest'.")
    return init


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _recorded_last_pool(workdir: str) -> str | None:
    """The last_pool of the run in `workdir`: from its init record, else from its saved config."""
    record = _read_json(os.path.join(workdir, RECORD)) or {}
    if record.get("last_pool"):
        return record["last_pool"]
    saved = _read_json(os.path.join(workdir, "config.json")) or {}
    return (saved.get("model") or {}).get("last_pool")


def bind(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
    """`config` with its `init` section completed and, for InceptionV3, the `last_pool` that its
    weights were trained with (what the workdir recorded, else what the weights to load need)."""
    init = _resolved_init(config)
    if init is None:
        return config
    config.init = init
    if "model" not in config:
        return config
    try:
        model = models.build_model(**config.model.to_dict())
    except (TypeError, ValueError):
        return config  # the engine says what is wrong with config.model, in its own words
    if not hasattr(model, "last_pool"):
        return config
    pool = _recorded_last_pool(os.path.abspath(workdir))
    if pool is None and init.workdir:
        pool = _recorded_last_pool(os.path.abspath(init.workdir))
    if pool is None and init.imagenet:
        pool = pretrained.choose(init.imagenet, init.keras_h5).last_pool
    if pool is not None and "last_pool" not in config.model:
        with config.model.unlocked():
            config.model.last_pool = pool
    return config


def _source(init: ml_collections.ConfigDict) -> tuple[dict, dict | None]:
    """(params, batch statistics or None) lent by the run in `init.workdir`, as host arrays."""
    directory = os.path.join(os.path.abspath(init.workdir), "best" if init.checkpoint == "best" else "checkpoints")
    step = None
    if os.path.isdir(directory):
        manager = ocp.CheckpointManager(
            directory, options=ocp.CheckpointManagerOptions(read_only=True), item_names=("state", "meta")
        )
        step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(
            f"config.init.workdir {init.workdir} holds no {init.checkpoint} checkpoint to start from: train that "
            f"run first (for paper B's frozen encoder: ./launch.sh experiments/voc_autoencoder.py:code8192), or "
            f"point --config.init.workdir at a finished run."
        )
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    manager.close()
    params = state["params"]
    if not init.params:
        return params, state.get("batch_stats") or None
    missing = [name for name in init.params if name not in params]
    if missing:
        raise ValueError(
            f"config.init.params names {missing[0]!r}, which the run in {init.workdir} does not "
            f"have: its parameters are {', '.join(sorted(params))}."
        )
    return {name: params[name] for name in init.params}, None


def _graft(ours: dict, borrowed: dict, source: str, what: str = "parameters") -> dict:
    """`ours` with the subtrees of `borrowed` put in, after checking every shape matches."""
    for name, subtree in borrowed.items():
        if name not in ours:
            raise ValueError(
                f"{source} has {what} {name!r}, which this model does not have: its {what} "
                f"are {', '.join(sorted(ours))}."
            )
        mine = jax.tree_util.tree_flatten_with_path(ours[name])[0]
        theirs = jax.tree_util.tree_flatten_with_path(subtree)[0]
        if jax.tree.structure(ours[name]) != jax.tree.structure(subtree) or any(
            a.shape != b.shape for (_, a), (_, b) in zip(mine, theirs)
        ):
            raise ValueError(
                f"The {name!r} weights of {source} do not fit this model's {name!r} (different layers "
                f"or shapes): give both runs the same model and image size."
            )
    return {**ours, **borrowed}


def prepare(config: ml_collections.ConfigDict, workdir: str) -> str | None:
    """Writes step 0 with the borrowed weights into `workdir`; returns what was done (None: nothing)."""
    config = bind(config, workdir)
    init = config.get("init")
    if init is None:
        return None
    if not init.imagenet and not init.workdir:
        raise ValueError(
            "This experiment starts from pretrained weights, but config.init names none: set "
            "--config.init.imagenet=auto (ImageNet weights) or --config.init.workdir=RUN (a run's "
            "checkpoint)."
        )
    workdir = writable_workdir(workdir)
    probe = Checkpoints(workdir)
    try:
        if probe.step() is not None:  # the run has begun: its own checkpoints go on
            return None
    finally:
        probe.close()
    if init.imagenet:  # before the costly build: a missing file stops the run at once
        choice = pretrained.choose(init.imagenet, init.keras_h5)
        fetched = pretrained.fetch(choice)
    else:
        borrowed, borrowed_stats = _source(init)
    with open_run(config, workdir) as run:
        state = run.engine.initial_state
        if init.imagenet:
            variables = pretrained.load(choice, fetched, run.engine.model, state.variables())
            params, batch_stats, source = variables["params"], variables["batch_stats"], choice.describe()
            record = {"weights": source, "kind": choice.kind, "last_pool": choice.last_pool}
        else:
            source = f"the {init.checkpoint} checkpoint in {init.workdir}"
            params = _graft(state.params, borrowed, source)
            batch_stats = (
                state.batch_stats
                if borrowed_stats is None
                else _graft(state.batch_stats, borrowed_stats, source, "batch statistics")
            )
            record = {"weights": source, "last_pool": run.config.model.get("last_pool")}
        params = jax.device_get(params)
        state = state.replace(
            params=params, batch_stats=jax.device_get(batch_stats), opt_state=run.engine.tx.init(params)
        )
        monitor = Monitor(run.config.monitor.metric, run.config.monitor.mode)
        # The loop's own bookkeeping of a run that has done nothing yet.
        run.checkpoints.save(
            jax.device_get(state), run_meta(monitor.counters(), class_names=run.pipelines.info.class_names)
        )
        run.checkpoints.wait()
        if jax.process_index() == 0:
            with open(os.path.join(workdir, RECORD), "w") as f:
                json.dump(record, f, indent=2)
    return f"Starting from the weights of {source}."
