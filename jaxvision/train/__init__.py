"""The training engine: `fit(config, workdir)` trains, `evaluate(...)` and `predict(...)` score a checkpoint.

Start reading at `loop.fit`. The parts, each in its own file:
  config.py       the config fields the engine owns, their defaults and checks
  state.py        TrainState: params, batch_stats, opt_state, step, rng
  optim.py        optax optimizers, schedules and freezing from config.optimizer
  tasks.py        per-task loss and metric functions (classification, multilabel,
                  reconstruction, segmentation)
  steps.py        pure train/eval steps for one device's shard, and their pmapped forms
  engine.py       model + task + optimizer + steps + step 0, from a config
  run.py          open_run: a config made into pipelines, engine and checkpoints, once
  loop.py         fit
  sums.py         metric sums on the host, divided once; a split's exact metrics
  scoring.py      evaluate and predict from a checkpoint
  features.py     a frozen backbone's head trained on cached features
  checkpoint.py   orbax checkpoints: latest k and best, resume (from any step kept)
  lock.py         one training run per workdir (WORKDIR/run.lock)
  monitor.py      best epoch and early stopping
  signals.py      SIGTERM / SIGINT -> save and stop
  distributed.py  jax.distributed from SLURM or JAX_* environment variables
  logs.py         progress bars, metrics.jsonl, TensorBoard events, config.json
"""

from jaxvision.train.checkpoint import set_aside_after
from jaxvision.train.config import ResolvedConfig, default_config, resolve
from jaxvision.train.distributed import PeerLost
from jaxvision.train.loop import FitResult, TrainingDiverged, fit
from jaxvision.train.scoring import evaluate, predict

__all__ = [
    "FitResult",
    "PeerLost",
    "ResolvedConfig",
    "TrainingDiverged",
    "default_config",
    "evaluate",
    "fit",
    "predict",
    "resolve",
    "set_aside_after",
]
